#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/safetensors/reader.h"
#include "common/safetensors/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace glvq {
namespace {

using testing::OwnedTensor;

namespace fs = std::filesystem;
using ::testing::HasSubstr;


// Distinct, non-trivial bytes per tensor so that swapped data shows up.
OwnedTensor MakeTensor(std::string name, DType dtype, std::vector<int64_t> shape) {
  int64_t elements = 1;
  for (const int64_t d : shape) elements *= d;
  std::vector<std::byte> data(static_cast<size_t>(elements) * DTypeSize(dtype));
  const size_t seed = std::hash<std::string>{}(name);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>((seed + i * 37) & 0xFF);
  return {std::move(name), dtype, std::move(shape), std::move(data)};
}

std::vector<TensorToWrite> Views(const std::vector<OwnedTensor>& tensors) {
  std::vector<TensorToWrite> views;
  for (const OwnedTensor& t : tensors) views.push_back(t.ToWrite());
  return views;
}

std::vector<OwnedTensor> EveryDtype() {
  return {
      MakeTensor("f32", DType::kF32, {2, 3}),   MakeTensor("f16", DType::kF16, {5}),
      MakeTensor("bf16", DType::kBF16, {3, 1}), MakeTensor("i8", DType::kI8, {7}),
      MakeTensor("u8", DType::kU8, {2, 2, 2}),  MakeTensor("i32", DType::kI32, {3}),
      MakeTensor("i64", DType::kI64, {2}),      MakeTensor("scalar", DType::kF32, {}),
      MakeTensor("empty", DType::kU8, {0}),     MakeTensor("empty2d", DType::kI64, {4, 0}),
  };
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(SafetensorsRwTest, RoundTripsEveryDtypeExactly) {
  testing::ScratchDir dir;
  const std::vector<OwnedTensor> tensors = EveryDtype();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "é \"q\""}};
  ASSERT_TRUE(WriteSafetensors(dir / "m.safetensors", Views(tensors), metadata).ok());

  const auto file = SafetensorsFile::Open(dir / "m.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->header().metadata, metadata);
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  for (const OwnedTensor& t : tensors) {
    SCOPED_TRACE(t.name);
    const auto view = (*file)->Get(t.name);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->dtype, t.dtype);
    EXPECT_EQ(view->shape, t.shape);
    EXPECT_TRUE(std::ranges::equal(view->data, t.data));
  }
  EXPECT_EQ((*file)->Get("absent").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*file)->Find("absent"), nullptr);
}

TEST(SafetensorsRwTest, HeaderBytesAreExact) {
  const std::vector<OwnedTensor> tensors = {MakeTensor("a", DType::kI8, {3}),
                                            MakeTensor("b", DType::kF32, {2})};
  std::vector<size_t> order;
  const auto header = SerializeSafetensorsHeader(Views(tensors), {{"format", "pt"}}, &order);
  ASSERT_TRUE(header.ok()) << header.status();
  const std::string json = R"({"__metadata__":{"format":"pt"},)"
                           R"("a":{"dtype":"I8","shape":[3],"data_offsets":[8,11]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string padding((8 - json.size() % 8) % 8, ' ');
  const uint64_t length = json.size() + padding.size();
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  EXPECT_EQ(*header, prefix + json + padding);
  EXPECT_EQ(order, (std::vector<size_t>{1, 0}));  // F32 before I8
}

TEST(SafetensorsRwTest, BytesDoNotDependOnInputOrder) {
  testing::ScratchDir dir;
  std::vector<OwnedTensor> tensors = EveryDtype();
  ASSERT_TRUE(WriteSafetensors(dir / "a.safetensors", Views(tensors), {{"k", "v"}}).ok());
  ASSERT_TRUE(WriteSafetensors(dir / "b.safetensors", Views(tensors), {{"k", "v"}}).ok());
  std::reverse(tensors.begin(), tensors.end());
  std::swap(tensors[1], tensors[4]);
  ASSERT_TRUE(WriteSafetensors(dir / "c.safetensors", Views(tensors), {{"k", "v"}}).ok());
  const std::string a = ReadAll(dir / "a.safetensors");
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, ReadAll(dir / "b.safetensors"));
  EXPECT_EQ(a, ReadAll(dir / "c.safetensors"));
}

TEST(SafetensorsRwTest, EveryTensorIsNaturallyAligned) {
  testing::ScratchDir dir;
  // Odd element counts everywhere: only the ordering keeps things aligned.
  const std::vector<OwnedTensor> tensors = {
      MakeTensor("a_u8", DType::kU8, {3}),     MakeTensor("b_i64", DType::kI64, {3}),
      MakeTensor("c_f16", DType::kF16, {5}),   MakeTensor("d_i32", DType::kI32, {1}),
      MakeTensor("e_bf16", DType::kBF16, {7}), MakeTensor("f_f32", DType::kF32, {3}),
      MakeTensor("g_i8", DType::kI8, {1}),     MakeTensor("h_i64", DType::kI64, {1}),
  };
  for (const std::string meta : {"", "x", "xyzzy12"}) {
    SCOPED_TRACE(meta);
    std::map<std::string, std::string> metadata;
    if (!meta.empty()) metadata["m"] = meta;
    ASSERT_TRUE(WriteSafetensors(dir / "m.safetensors", Views(tensors), metadata).ok());
    const auto file = SafetensorsFile::Open(dir / "m.safetensors");
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->header().data_offset % 8, 0u);
    for (const TensorEntry& t : (*file)->tensors()) {
      EXPECT_EQ(((*file)->header().data_offset + t.begin) % DTypeSize(t.dtype), 0u) << t.name;
    }
  }
}

TEST(SafetensorsRwTest, WritesAnEmptyModel) {
  testing::ScratchDir dir;
  ASSERT_TRUE(WriteSafetensors(dir / "e.safetensors", {}).ok());
  EXPECT_EQ(ReadAll(dir / "e.safetensors"), std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  const auto file = SafetensorsFile::Open(dir / "e.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->tensors().empty());
}

absl::Status SerializeOnly(const std::vector<TensorToWrite>& tensors,
                           const std::map<std::string, std::string>& metadata = {}) {
  return SerializeSafetensorsHeader(tensors, metadata, nullptr).status();
}

void ExpectInvalid(const absl::Status& status, const std::string& expected) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(expected));
}

TEST(SafetensorsRwTest, WriterRejectsBadTensors) {
  const OwnedTensor ok = MakeTensor("w", DType::kF32, {2, 2});
  TensorToWrite short_data = ok.ToWrite();
  short_data.data = short_data.data.first(15);
  ExpectInvalid(SerializeOnly({short_data}),
                "tensor \"w\": data holds 15 bytes but shape [2, 2] of F32 needs 16");
  ExpectInvalid(SerializeOnly({ok.ToWrite(), ok.ToWrite()}), "duplicate tensor name \"w\"");
  TensorToWrite negative = ok.ToWrite();
  negative.shape = {-2, -8};
  ExpectInvalid(SerializeOnly({negative}), "negative dimension in shape [-2, -8]");
  TensorToWrite unnamed = ok.ToWrite();
  unnamed.name = "";
  ExpectInvalid(SerializeOnly({unnamed}), "tensor name is empty");
  TensorToWrite reserved = ok.ToWrite();
  reserved.name = "__metadata__";
  ExpectInvalid(SerializeOnly({reserved}), "is reserved");
  TensorToWrite not_utf8 = ok.ToWrite();
  not_utf8.name = "bad\xff";
  ExpectInvalid(SerializeOnly({not_utf8}), "is not valid UTF-8");
  ExpectInvalid(SerializeOnly({ok.ToWrite()}, {{"k", "\xc3"}}), "is not valid UTF-8");
}

TEST(SafetensorsRwTest, FailedWriteLeavesNoFile) {
  testing::ScratchDir dir;
  const OwnedTensor ok = MakeTensor("w", DType::kF32, {4});
  TensorToWrite bad = MakeTensor("x", DType::kF32, {4}).ToWrite();
  bad.data = ok.data;
  bad.shape = {5};
  const std::vector<TensorToWrite> tensors = {ok.ToWrite(), bad};
  EXPECT_FALSE(WriteSafetensors(dir / "m.safetensors", tensors).ok());
  EXPECT_TRUE(DirEntries(dir.path()).empty());
  EXPECT_FALSE(WriteSafetensorsModel(dir.path(), tensors, {}, 8).ok());
  EXPECT_TRUE(DirEntries(dir.path()).empty());
}

TEST(SafetensorsRwTest, FailedWriteKeepsThePreviousFile) {
  testing::ScratchDir dir;
  const std::vector<OwnedTensor> good = EveryDtype();
  ASSERT_TRUE(WriteSafetensors(dir / "m.safetensors", Views(good)).ok());
  const std::string before = ReadAll(dir / "m.safetensors");
  const OwnedTensor t = MakeTensor("w", DType::kF32, {4});
  ASSERT_FALSE(
      WriteSafetensors(dir / "m.safetensors", std::vector<TensorToWrite>{t.ToWrite(), t.ToWrite()})
          .ok());
  EXPECT_EQ(ReadAll(dir / "m.safetensors"), before);
  EXPECT_EQ(DirEntries(dir.path()), std::vector<std::string>{"m.safetensors"});
}

TEST(SafetensorsRwTest, WriteIntoMissingDirectoryFails) {
  testing::ScratchDir dir;
  const OwnedTensor t = MakeTensor("w", DType::kF32, {4});
  EXPECT_FALSE(
      WriteSafetensors(dir / "no" / "m.safetensors", std::vector<TensorToWrite>{t.ToWrite()}).ok());
  EXPECT_EQ(WriteSafetensorsModel(dir / "no", std::vector<TensorToWrite>{t.ToWrite()}).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace glvq
