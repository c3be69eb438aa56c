#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "common/safetensors/header.h"
#include "common/safetensors/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace glvq {
namespace {

using ::testing::HasSubstr;

std::string LengthPrefix(uint64_t length) {
  std::string bytes(8, '\0');
  for (char& b : bytes) {
    b = static_cast<char>(length & 0xFF);
    length >>= 8;
  }
  return bytes;
}

// A file made of `json` as the header and `data_bytes` zero bytes of data.
std::string MakeFile(const std::string& json, size_t data_bytes = 0) {
  return LengthPrefix(json.size()) + json + std::string(data_bytes, '\0');
}

absl::StatusOr<SafetensorsHeader> Parse(const std::string& file) {
  return ParseSafetensorsHeader(std::as_bytes(std::span(file.data(), file.size())));
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

struct MalformedCase {
  std::string label;
  std::string file;
  std::string expected;  // distinctive part of the message
};

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.label; }

class MalformedHeaderTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedHeaderTest, RejectedWithSpecificMessage) {
  const absl::StatusOr<SafetensorsHeader> header = Parse(GetParam().file);
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(header.status()), HasSubstr(GetParam().expected));
}

const char kF32Entry[] = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

std::string Nested(int depth) {
  return R"({"__metadata__":{"x":)" + std::string(depth, '[') + std::string(depth, ']') + "}}";
}

INSTANTIATE_TEST_SUITE_P(
    Safetensors, MalformedHeaderTest,
    ::testing::Values(
        MalformedCase{"EmptyFile", "", "file is empty"},
        MalformedCase{"Truncated", std::string("\x05\0\0\0", 4), "file is truncated: 4 bytes"},
        MalformedCase{"LengthPastEof", LengthPrefix(123456789) + std::string(992, ' '),
                      "header length 123456789 exceeds the file size 1000"},
        MalformedCase{"LengthZero", LengthPrefix(0) + "{}", "header length is 0"},
        // The usual wrong files say what they are.
        MalformedCase{"AConfigJson", "{\n  \"architectures\": [\"LlamaForCausalLM\"]\n}\n",
                      "not a safetensors file: it is JSON text (a config.json?); pass the "
                      "model's directory or its .safetensors file"},
        MalformedCase{"AGgufFile", std::string("GGUF\x03\0\0\0", 8) + std::string(100, 'x'),
                      "not a safetensors file: it is a GGUF file"},
        MalformedCase{"APyTorchZip", std::string("PK\x03\x04", 4) + std::string(100, 'x'),
                      "not a safetensors file: it is a zip archive"},
        MalformedCase{"InvalidJson", MakeFile(R"({"a":)"), "not valid JSON (error at byte 6"},
        MalformedCase{"NumberOverflow", MakeFile(R"({"__metadata__":{"x":40e1152}})"),
                      "number overflow parsing '40e1152'"},
        MalformedCase{"InvalidUtf8", MakeFile("{\"\xff\":{}}"), "not valid JSON"},
        MalformedCase{"NotAnObject", MakeFile("[1,2]"), "header is not a JSON object but array"},
        MalformedCase{"LeadingWhitespace", MakeFile(" {}"), "does not start with '{'"},
        MalformedCase{"NestingBomb", MakeFile(Nested(100000)), "nests deeper than 32 levels"},
        MalformedCase{"EmptyName",
                      MakeFile(R"({"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})"),
                      "empty tensor name"},
        MalformedCase{"EntryNotObject", MakeFile(R"({"a":[1]})"),
                      "tensor \"a\": entry is not a JSON object"},
        MalformedCase{"MissingDtype", MakeFile(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8),
                      "tensor \"a\": missing \"dtype\""},
        MalformedCase{"MissingShape", MakeFile(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8),
                      "tensor \"a\": missing \"shape\""},
        MalformedCase{"MissingDataOffsets", MakeFile(R"({"a":{"dtype":"F32","shape":[2]}})", 8),
                      "tensor \"a\": missing \"data_offsets\""},
        MalformedCase{
            "UnknownEntryKey",
            MakeFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
            "tensor \"a\": unknown key \"x\""},
        MalformedCase{"UnknownDtype",
                      MakeFile(R"({"w":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", 1),
                      "tensor \"w\": unknown or unsupported dtype \"BOOL\""},
        MalformedCase{"DtypeNotString",
                      MakeFile(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
                      "tensor \"w\": dtype is not a string"},
        MalformedCase{"ShapeNotArray",
                      MakeFile(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8),
                      "tensor \"w\": shape is not an array"},
        MalformedCase{"NegativeDim",
                      MakeFile(R"({"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}})", 16),
                      "tensor \"w\": shape dimension 1 is negative (-2)"},
        MalformedCase{"FractionalDim",
                      MakeFile(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8),
                      "shape dimension 0 is not an integer: 2.5"},
        MalformedCase{"StringDim",
                      MakeFile(R"({"w":{"dtype":"F32","shape":["3"],"data_offsets":[0,12]}})", 12),
                      "shape dimension 0 is not an integer: \"3\""},
        MalformedCase{
            "DimTooLarge",
            MakeFile(R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}})"),
            "shape dimension 0 (9223372036854775808) is too large"},
        MalformedCase{
            "ElementCountOverflow",
            MakeFile(
                R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
            "overflows: the element count"},
        MalformedCase{
            "ByteSizeOverflow",
            MakeFile(R"({"w":{"dtype":"I64","shape":[4611686018427387904],"data_offsets":[0,0]}})"),
            "overflows: the byte size"},
        MalformedCase{"OffsetsWrongArity",
                      MakeFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", 8),
                      "tensor \"w\": data_offsets must be two non-negative integers, got [8]"},
        MalformedCase{"NegativeOffset",
                      MakeFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8),
                      "data_offsets must be two non-negative integers"},
        MalformedCase{"BeginAfterEnd",
                      MakeFile(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}})", 8),
                      "tensor \"w\": data_offsets begin 8 is after end 4"},
        MalformedCase{"SpanShapeMismatch",
                      MakeFile(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20),
                      "tensor \"w\": span/shape mismatch: data_offsets [0, 20) hold 20 bytes but "
                      "shape [2, 3] of F32 needs 24"},
        MalformedCase{"SpanPastEnd",
                      MakeFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 6),
                      "tensor \"w\": data_offsets [0, 8) extend past the end of the data section "
                      "(6 bytes)"},
        MalformedCase{"OverlappingSpans",
                      MakeFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                               12),
                      "tensors \"a\" [0, 8) and \"b\" [4, 12) overlap"},
        MalformedCase{"HoleBetweenSpans",
                      MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                               12),
                      "hole in the data section: bytes [4, 8) before tensor \"b\""},
        MalformedCase{"TrailingBytes", MakeFile(std::string("{") + kF32Entry + "}", 9),
                      "hole in the data section: trailing bytes [8, 9)"},
        MalformedCase{"DuplicateTensor",
                      MakeFile(std::string("{") + kF32Entry + "," + kF32Entry + "}", 8),
                      "duplicate tensor name \"a\""},
        MalformedCase{
            "DuplicateEntryKey",
            MakeFile(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
            "\"a\": duplicate key \"dtype\""},
        MalformedCase{"MetadataNotObject", MakeFile(R"({"__metadata__":["x"]})"),
                      "__metadata__ is not a JSON object"},
        MalformedCase{"MetadataNotString", MakeFile(R"({"__metadata__":{"format":"pt","n":3}})"),
                      "__metadata__ value for key \"n\" is not a string but 3"}),
    [](const ::testing::TestParamInfo<MalformedCase>& test_info) { return test_info.param.label; });

TEST(SafetensorsHeaderTest, HeaderOverTheLimitIsRejectedBeforeParsing) {
  testing::ScratchDir dir;
  const std::filesystem::path path = dir / "big.safetensors";
  testing::WriteFile(path, LengthPrefix(kMaxSafetensorsHeaderBytes + 1) + "{");
  // Sparse: the size is there, the bytes are never touched.
  std::filesystem::resize_file(path, kMaxSafetensorsHeaderBytes + 16);
  const auto file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      Message(file.status()),
      HasSubstr(path.string() + ": header length 100000001 exceeds the limit of 100000000"));
}

TEST(SafetensorsHeaderTest, ReaderNamesTheFile) {
  testing::ScratchDir dir;
  const std::filesystem::path path = dir / "model.safetensors";
  testing::WriteFile(path, LengthPrefix(123456789) + std::string(992, ' '));
  const auto file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(file.status()),
            path.string() +
                ": header length 123456789 exceeds the file size 1000: not a safetensors file, "
                "or a truncated one");
}

TEST(SafetensorsHeaderTest, MissingFileIsNotFound) {
  testing::ScratchDir dir;
  const auto file = SafetensorsFile::Open(dir / "absent.safetensors");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
}

TEST(SafetensorsHeaderTest, ParsesTensorsSortedByNameWithMetadata) {
  const std::string json = R"({"__metadata__":{"format":"pt"},)"
                           R"("z":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                           R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[24,28]},)"
                           R"("a":{"dtype":"I8","shape":[3],"data_offsets":[28,31]}}   )";
  const auto header = Parse(MakeFile(json, 31));
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->tensors.size(), 3u);
  EXPECT_EQ(header->tensors[0].name, "a");
  EXPECT_EQ(header->tensors[0].dtype, DType::kI8);
  EXPECT_EQ(header->tensors[0].begin, 28u);
  EXPECT_EQ(header->tensors[0].end, 31u);
  EXPECT_EQ(header->tensors[1].name, "b");
  EXPECT_EQ(header->tensors[1].dtype, DType::kBF16);
  EXPECT_EQ(header->tensors[2].name, "z");
  EXPECT_EQ(header->tensors[2].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(header->metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(header->data_offset, 8 + json.size());
  EXPECT_EQ(header->data_size, 31u);
}

TEST(SafetensorsHeaderTest, AcceptsScalarTensor) {
  const auto header =
      Parse(MakeFile(R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", 4));
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->tensors.size(), 1u);
  EXPECT_TRUE(header->tensors[0].shape.empty());
  EXPECT_EQ(header->tensors[0].end, 4u);
}

TEST(SafetensorsHeaderTest, AcceptsZeroSizeTensors) {
  const auto header = Parse(MakeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                     R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                     R"("f":{"dtype":"I64","shape":[3,0],"data_offsets":[4,4]},)"
                                     R"("g":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                                     6));
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->tensors.size(), 4u);
  EXPECT_EQ(header->tensors[1].shape, std::vector<int64_t>{0});
  EXPECT_EQ(header->tensors[1].begin, header->tensors[1].end);
}

TEST(SafetensorsHeaderTest, AcceptsNegativeZeroAsZero) {
  const auto header =
      Parse(MakeFile(R"({"e":{"dtype":"F32","shape":[-0],"data_offsets":[-0,0]}})"));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->tensors[0].shape, std::vector<int64_t>{0});
}

TEST(SafetensorsHeaderTest, AcceptsEmptyModel) {
  const auto header = Parse(MakeFile("{}      "));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_TRUE(header->tensors.empty());
  EXPECT_EQ(header->data_offset, 16u);
  EXPECT_EQ(header->data_size, 0u);
}

TEST(SafetensorsHeaderTest, BracketsInsideStringsDoNotCountAsNesting) {
  const std::string deep_text(1000, '[');
  const auto header = Parse(MakeFile(R"({"__metadata__":{"x":")" + deep_text + R"(\""}})"));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->metadata.at("x"), deep_text + "\"");
}

}  // namespace
}  // namespace glvq
