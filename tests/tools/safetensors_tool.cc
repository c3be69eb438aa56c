// Test helper for the interop check against the official Python package.
//
//   safetensors_tool write DIR        writes reference.safetensors (every
//                                     dtype), numpy_dtypes.safetensors (the
//                                     same without BF16), empty.safetensors and
//                                     a sharded model in DIR/sharded; the
//                                     values are spelled out again, on their
//                                     own, in tests/interop/safetensors_interop.py
//   safetensors_tool dump FILE_OR_DIR prints every tensor as JSON:
//     {"metadata": {...}, "tensors": {name: {"dtype", "shape", "hex"}}}
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/safetensors/reader.h"
#include "common/safetensors/writer.h"
#include "common/tensor/dtype.h"
#include "nlohmann/json.hpp"

namespace glvq {
namespace {

namespace fs = std::filesystem;

// Shards of at most this many bytes, so that the sharded model has several.
constexpr uint64_t kShardBytes = 100;

struct OwnedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

template <typename T>
OwnedTensor FromValues(std::string name, DType dtype, std::vector<int64_t> shape,
                       const std::vector<T>& values) {
  std::vector<std::byte> data(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(data.data(), values.data(), data.size());
  return {std::move(name), dtype, std::move(shape), std::move(data)};
}

// Bit patterns chosen to hit zero, negative zero, extremes, subnormals,
// infinities and NaN in every float dtype.
std::vector<OwnedTensor> ReferenceTensors() {
  constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
  constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
  constexpr int32_t kI32Min = std::numeric_limits<int32_t>::min();
  constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();
  return {
      FromValues<uint32_t>("f32", DType::kF32, {2, 4},
                           {0x00000000, 0x80000000, 0x3F800000, 0xC0200000, 0x7F7FFFFF, 0x00000001,
                            0x7F800000, 0x7FC00000}),
      FromValues<uint16_t>("f16", DType::kF16, {3, 4},
                           {0x0000, 0x8000, 0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x7C00,
                            0xFC00, 0x7E00, 0x3555}),
      FromValues<uint16_t>("bf16", DType::kBF16, {12},
                           {0x0000, 0x8000, 0x3F80, 0xC000, 0x7F7F, 0x0001, 0x007F, 0x0080, 0x7F80,
                            0xFF80, 0x7FC0, 0x3EAB}),
      FromValues<int8_t>("i8", DType::kI8, {5}, {-128, -1, 0, 1, 127}),
      FromValues<uint8_t>("u8", DType::kU8, {2, 3}, {0, 1, 127, 128, 254, 255}),
      FromValues<int32_t>("i32", DType::kI32, {5}, {kI32Min, -1, 0, 1, kI32Max}),
      FromValues<int64_t>("i64", DType::kI64, {5}, {kI64Min, -1, 0, 1, kI64Max}),
      FromValues<uint64_t>("f64", DType::kF64, {2, 3},
                           {0x0000000000000000, 0x8000000000000000, 0x3FD5555555555555,
                            0x7FEFFFFFFFFFFFFF, 0x0000000000000001, 0x7FF8000000000000}),
      FromValues<uint32_t>("scalar_f32", DType::kF32, {}, {0x40490FDB}),
      FromValues<uint16_t>("empty_f16", DType::kF16, {0}, {}),
      FromValues<int32_t>("empty_2d_i32", DType::kI32, {3, 0}, {}),
  };
}

// F32 bit patterns the Python side narrows with numpy (F16) or by hand
// (BF16): checks our rounding (ties to even, overflow to Inf, underflow to
// subnormals and zero) against theirs. Kept in sync with the script.
std::vector<float> ConversionInputs() {
  constexpr uint32_t kBits[] = {
      0x3EAAAAAB, 0xBEAAAAAB, 0x477FE000, 0x477FEFFF, 0x477FF000, 0xC77FF000, 0x47C35000,
      0x33000000, 0x33000001, 0x33C00000, 0x80000000, 0x3DCCCCCD, 0x40490FDB, 0x7F7FFFFF,
      0x7F800000, 0x3F808000, 0x3F818000, 0x387FC000, 0x387FF000,
  };
  std::vector<float> values;
  for (const uint32_t bits : kBits) values.push_back(std::bit_cast<float>(bits));
  return values;
}

absl::StatusOr<OwnedTensor> Converted(std::string name, DType dtype) {
  const std::vector<float> inputs = ConversionInputs();
  std::vector<std::byte> data(inputs.size() * DTypeSize(dtype));
  RETURN_IF_ERROR(ConvertFromF32(inputs, dtype, data));
  return OwnedTensor{
      std::move(name), dtype, {static_cast<int64_t>(inputs.size())}, std::move(data)};
}

// Element i of the sharded model's tensors is a simple function of i.
template <typename T>
OwnedTensor Ramp(std::string name, DType dtype, int64_t n, T (*value)(int64_t)) {
  std::vector<T> values;
  for (int64_t i = 0; i < n; ++i) values.push_back(value(i));
  return FromValues<T>(std::move(name), dtype, {n}, values);
}

std::vector<OwnedTensor> ShardedTensors() {
  return {
      Ramp<float>("layers.0.weight", DType::kF32, 16,
                  [](int64_t i) { return static_cast<float>(i) * 0.25f - 1.0f; }),
      Ramp<uint16_t>("layers.0.bias", DType::kF16, 4,
                     [](int64_t i) { return static_cast<uint16_t>(0x3C00 + i); }),
      Ramp<uint16_t>("layers.1.weight", DType::kBF16, 16,
                     [](int64_t i) { return static_cast<uint16_t>(0x3F80 + i); }),
      Ramp<int32_t>("layers.1.bias", DType::kI32, 4,
                    [](int64_t i) { return static_cast<int32_t>(i * 1000 - 7); }),
      Ramp<int64_t>("embed", DType::kI64, 8, [](int64_t i) { return i * 1'000'000'000'000 - 5; }),
      Ramp<uint8_t>("codes", DType::kU8, 3,
                    [](int64_t i) { return static_cast<uint8_t>(250 + i); }),
  };
}

std::vector<TensorToWrite> Views(const std::vector<OwnedTensor>& tensors) {
  std::vector<TensorToWrite> views;
  for (const OwnedTensor& t : tensors) views.push_back({t.name, t.dtype, t.shape, t.data});
  return views;
}

absl::Status Write(const fs::path& dir) {
  std::vector<OwnedTensor> reference = ReferenceTensors();
  ASSIGN_OR_RETURN(OwnedTensor f16, Converted("converted_f16", DType::kF16));
  ASSIGN_OR_RETURN(OwnedTensor bf16, Converted("converted_bf16", DType::kBF16));
  reference.push_back(std::move(f16));
  reference.push_back(std::move(bf16));
  RETURN_IF_ERROR(WriteSafetensors(dir / "reference.safetensors", Views(reference),
                                   {{"format", "pt"}, {"producer", "glvq"}}));
  std::erase_if(reference, [](const OwnedTensor& t) { return t.dtype == DType::kBF16; });
  RETURN_IF_ERROR(WriteSafetensors(dir / "numpy_dtypes.safetensors", Views(reference)));
  RETURN_IF_ERROR(WriteSafetensors(dir / "empty.safetensors", {}));
  fs::create_directories(dir / "sharded");
  return WriteSafetensorsModel(dir / "sharded", Views(ShardedTensors()), {{"format", "pt"}},
                               kShardBytes);
}

std::string Hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const std::byte b : bytes) {
    hex.push_back(kDigits[std::to_integer<int>(b) >> 4]);
    hex.push_back(kDigits[std::to_integer<int>(b) & 0xF]);
  }
  return hex;
}

absl::Status Dump(const fs::path& path) {
  ASSIGN_OR_RETURN(const SafetensorsModel model, SafetensorsModel::Open(path));
  nlohmann::json tensors = nlohmann::json::object();
  for (const std::string& name : model.tensor_names()) {
    ASSIGN_OR_RETURN(const TensorView view, model.Get(name));
    tensors[name] = {
        {"dtype", DTypeName(view.dtype)}, {"shape", view.shape}, {"hex", Hex(view.data)}};
  }
  const nlohmann::json out = {{"metadata", model.metadata()}, {"tensors", tensors}};
  std::cout << out.dump(1) << "\n";
  return absl::OkStatus();
}

int Usage() {
  std::cerr << "usage: safetensors_tool write DIR | dump FILE_OR_DIR\n";
  return 2;
}

}  // namespace
}  // namespace glvq

int main(int argc, char** argv) {
  if (argc != 3) return glvq::Usage();
  const std::string command = argv[1];
  absl::Status status;
  if (command == "write") {
    status = glvq::Write(argv[2]);
  } else if (command == "dump") {
    status = glvq::Dump(argv[2]);
  } else {
    return glvq::Usage();
  }
  if (!status.ok()) {
    std::cerr << "safetensors_tool: " << status << "\n";
    return 1;
  }
  return 0;
}
