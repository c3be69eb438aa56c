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
#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

namespace glvq {
namespace {

using testing::OwnedTensor;

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kIndex[] = "model.safetensors.index.json";


OwnedTensor F32Tensor(std::string name, int64_t elements) {
  std::vector<std::byte> data(static_cast<size_t>(elements) * 4);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<std::byte>((name.size() * 59 + i * 13) & 0xFF);
  }
  return {std::move(name), DType::kF32, {elements}, std::move(data)};
}

std::vector<TensorToWrite> Views(const std::vector<OwnedTensor>& tensors) {
  std::vector<TensorToWrite> views;
  for (const OwnedTensor& t : tensors) views.push_back(t.ToWrite());
  return views;
}

std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void ExpectSameTensors(const SafetensorsModel& model, const std::vector<OwnedTensor>& tensors) {
  std::vector<std::string> names;
  for (const OwnedTensor& t : tensors) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(model.tensor_names(), names);
  for (const OwnedTensor& t : tensors) {
    const auto view = model.Get(t.name);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->shape, t.shape);
    EXPECT_TRUE(std::ranges::equal(view->data, t.data)) << t.name;
  }
}

std::vector<OwnedTensor> SixTensors() {
  return {F32Tensor("e", 16), F32Tensor("a", 16),   F32Tensor("bb", 16),
          F32Tensor("c", 8),  F32Tensor("ddd", 16), F32Tensor("f", 4)};
}

TEST(SafetensorsModelTest, ShardedWriteReadsBack) {
  testing::ScratchDir dir;
  const std::vector<OwnedTensor> tensors = SixTensors();
  ASSERT_TRUE(WriteSafetensorsModel(dir.path(), Views(tensors), {{"format", "pt"}}, 150).ok());
  // Name order a(64) bb(64) | c(32) ddd(64) | e(64) f(16).
  EXPECT_EQ(DirEntries(dir.path()),
            (std::vector<std::string>{"model-00001-of-00003.safetensors",
                                      "model-00002-of-00003.safetensors",
                                      "model-00003-of-00003.safetensors", kIndex}));
  const auto model = SafetensorsModel::Open(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();
  ExpectSameTensors(*model, tensors);
  EXPECT_EQ(model->files().size(), 3u);
  EXPECT_EQ(model->directory(), dir.path());
  EXPECT_EQ(model->metadata().at("format"), "pt");
  EXPECT_EQ(model->metadata().at("total_size"), "304");
  EXPECT_EQ(model->FileOf("c")->path().filename(), "model-00002-of-00003.safetensors");
  EXPECT_EQ(model->Find("c")->shape, std::vector<int64_t>{8});
  EXPECT_EQ(model->FileOf("zz"), nullptr);
  EXPECT_EQ(model->Get("zz").status().code(), absl::StatusCode::kNotFound);
}

TEST(SafetensorsModelTest, IndexIsHfStyleWithSortedKeys) {
  testing::ScratchDir dir;
  ASSERT_TRUE(WriteSafetensorsModel(dir.path(), Views(SixTensors()), {}, 150).ok());
  const std::string text = ReadAll(dir / kIndex);
  EXPECT_TRUE(text.starts_with(
      "{\n  \"metadata\": {\n    \"total_size\": 304\n  },\n  \"weight_map\": {\n    \"a\": "))
      << text;
  const auto index = nlohmann::json::parse(text);
  EXPECT_EQ(index["weight_map"]["f"], "model-00003-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"].size(), 6u);
}

TEST(SafetensorsModelTest, TensorLargerThanAShardGetsItsOwn) {
  testing::ScratchDir dir;
  const std::vector<OwnedTensor> tensors = {F32Tensor("a", 2), F32Tensor("b", 25),
                                            F32Tensor("c", 2)};
  ASSERT_TRUE(WriteSafetensorsModel(dir.path(), Views(tensors), {}, 50).ok());
  const auto index = nlohmann::json::parse(ReadAll(dir / kIndex));
  EXPECT_EQ(index["weight_map"]["a"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["b"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["c"], "model-00003-of-00003.safetensors");
}

TEST(SafetensorsModelTest, SingleFileWhenItFits) {
  testing::ScratchDir dir;
  const std::vector<OwnedTensor> tensors = SixTensors();
  ASSERT_TRUE(WriteSafetensorsModel(dir.path(), Views(tensors), {{"format", "pt"}}).ok());
  EXPECT_EQ(DirEntries(dir.path()), std::vector<std::string>{"model.safetensors"});
  for (const fs::path& path : {dir.path(), dir / "model.safetensors"}) {
    const auto model = SafetensorsModel::Open(path);
    ASSERT_TRUE(model.ok()) << model.status();
    ExpectSameTensors(*model, tensors);
    EXPECT_EQ(model->directory(), dir.path());
    EXPECT_EQ(model->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  }
}

TEST(SafetensorsModelTest, RewritingSwitchesLayoutCleanly) {
  testing::ScratchDir dir;
  const std::vector<OwnedTensor> tensors = SixTensors();
  ASSERT_TRUE(WriteSafetensorsModel(dir.path(), Views(tensors), {}, 150).ok());
  ASSERT_TRUE(WriteSafetensorsModel(dir.path(), Views(tensors)).ok());
  EXPECT_FALSE(fs::exists(dir / kIndex));
  ASSERT_TRUE(WriteSafetensorsModel(dir.path(), Views(tensors), {}, 150).ok());
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  const auto model = SafetensorsModel::Open(dir.path());
  ASSERT_TRUE(model.ok()) << model.status();
  ExpectSameTensors(*model, tensors);
}

// A hand-made sharded model: shards with the given tensors, then an index.
class SafetensorsIndexTest : public ::testing::Test {
 protected:
  void WriteShard(const std::string& name, const std::vector<std::string>& tensor_names) {
    std::vector<OwnedTensor> tensors;
    for (const std::string& t : tensor_names) tensors.push_back(F32Tensor(t, 3));
    ASSERT_TRUE(WriteSafetensors(dir_ / name, Views(tensors)).ok());
  }
  void WriteIndex(const std::map<std::string, std::string>& weight_map) {
    const nlohmann::json index = {{"metadata", {{"total_size", 24}}}, {"weight_map", weight_map}};
    testing::WriteFile(dir_ / kIndex, index.dump());
  }
  absl::Status OpenError() {
    const auto model = SafetensorsModel::Open(dir_.path());
    return model.ok() ? absl::OkStatus() : model.status();
  }
  void ExpectError(absl::StatusCode code, const std::string& expected) {
    const absl::Status status = OpenError();
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(expected));
  }
  std::string IndexPath() const { return (dir_ / kIndex).string(); }

  testing::ScratchDir dir_;
};

TEST_F(SafetensorsIndexTest, OpensEachShardOnce) {
  WriteShard("s1.safetensors", {"a", "b"});
  WriteShard("s2.safetensors", {"c"});
  WriteIndex({{"a", "s1.safetensors"}, {"b", "./s1.safetensors"}, {"c", "s2.safetensors"}});
  const auto model = SafetensorsModel::Open(dir_.path());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->files().size(), 2u);
  EXPECT_EQ(model->tensor_names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(model->metadata().at("total_size"), "24");
}

TEST_F(SafetensorsIndexTest, MissingShardIsNotFound) {
  WriteShard("s1.safetensors", {"a"});
  WriteIndex({{"a", "s1.safetensors"}, {"b", "gone.safetensors"}});
  ExpectError(absl::StatusCode::kNotFound,
              IndexPath() + ": shard \"gone.safetensors\" does not exist");
}

TEST_F(SafetensorsIndexTest, ParentDirectoryIsRefused) {
  WriteIndex({{"a", "../x.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument, "shard \"../x.safetensors\" contains \"..\"");
  WriteIndex({{"a", "sub/../../x.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument, "contains \"..\"");
}

TEST_F(SafetensorsIndexTest, AbsolutePathIsRefused) {
  WriteShard("s1.safetensors", {"a"});
  WriteIndex({{"a", (dir_ / "s1.safetensors").string()}});
  ExpectError(absl::StatusCode::kInvalidArgument, "is an absolute path");
  WriteIndex({{"a", "/abs/path"}});
  ExpectError(absl::StatusCode::kInvalidArgument, "shard \"/abs/path\" is an absolute path");
}

TEST_F(SafetensorsIndexTest, SymlinkOutOfTheDirectoryIsRefused) {
  testing::ScratchDir outside;
  ASSERT_TRUE(WriteSafetensors(outside / "o.safetensors", Views({F32Tensor("a", 3)})).ok());
  fs::create_symlink(outside / "o.safetensors", dir_ / "link.safetensors");
  WriteIndex({{"a", "link.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument, "shard \"link.safetensors\" resolves to " +
                                                      (outside / "o.safetensors").string() +
                                                      ", outside the model directory");
  fs::create_directory_symlink(outside.path(), dir_ / "subdir");
  WriteIndex({{"a", "subdir/o.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument, "outside the model directory");
}

TEST_F(SafetensorsIndexTest, SymlinkInsideTheDirectoryIsFine) {
  fs::create_directory(dir_ / "shards");
  WriteShard("shards/real.safetensors", {"a"});
  fs::create_symlink("shards/real.safetensors", dir_ / "link.safetensors");
  WriteIndex({{"a", "link.safetensors"}});
  EXPECT_TRUE(OpenError().ok()) << OpenError();
}

TEST_F(SafetensorsIndexTest, TensorInTwoShards) {
  WriteShard("s1.safetensors", {"a", "b"});
  WriteShard("s2.safetensors", {"b", "c"});
  WriteIndex({{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"c", "s2.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument, "tensor \"b\" is in two shards");
}

TEST_F(SafetensorsIndexTest, ListedTensorAbsentFromItsShard) {
  WriteShard("s1.safetensors", {"a", "b"});
  WriteIndex({{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"z", "s1.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument,
              "tensor \"z\" is mapped to shard \"s1.safetensors\", which does not contain it");
}

TEST_F(SafetensorsIndexTest, ListedTensorInAnotherShard) {
  WriteShard("s1.safetensors", {"a"});
  WriteShard("s2.safetensors", {"b"});
  WriteIndex({{"a", "s2.safetensors"}, {"b", "s1.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument, "which does not contain it");
}

TEST_F(SafetensorsIndexTest, ShardTensorMissingFromIndex) {
  WriteShard("s1.safetensors", {"a", "b"});
  WriteIndex({{"a", "s1.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument,
              "holds tensor \"b\", which the index does not list");
}

TEST_F(SafetensorsIndexTest, MalformedShardNamesTheShard) {
  testing::WriteFile(dir_ / "s1.safetensors", "abc");
  WriteIndex({{"a", "s1.safetensors"}});
  ExpectError(absl::StatusCode::kInvalidArgument, "s1.safetensors: file is truncated");
}

TEST_F(SafetensorsIndexTest, MalformedIndex) {
  testing::WriteFile(dir_ / kIndex, "{\"weight_map\": ");
  ExpectError(absl::StatusCode::kInvalidArgument, IndexPath() + ": not valid JSON");
  testing::WriteFile(dir_ / kIndex, "{\"metadata\": {}}");
  ExpectError(absl::StatusCode::kInvalidArgument, "no \"weight_map\" object");
  testing::WriteFile(dir_ / kIndex, "{\"weight_map\": {\"a\": 1}}");
  ExpectError(absl::StatusCode::kInvalidArgument, "weight_map entry for \"a\" is not a string");
  testing::WriteFile(dir_ / kIndex, "{\"weight_map\": {\"a\": \"\"}}");
  ExpectError(absl::StatusCode::kInvalidArgument, "empty shard name");
}

TEST(SafetensorsModelOpenTest, EmptyDirectoryIsNotFound) {
  testing::ScratchDir dir;
  const auto model = SafetensorsModel::Open(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("no model.safetensors or model.safetensors.index.json"));
  EXPECT_EQ(SafetensorsModel::Open(dir / "nope").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace glvq
