// Writing safetensors files that any safetensors reader accepts.
//
// Output bytes are a pure function of the input: header keys sorted by name
// (`__metadata__` first), data ordered by decreasing dtype size then name so
// that every tensor is naturally aligned without holes, header padded with
// spaces so the data section starts at a multiple of 8. Files are written
// atomically (temp file, fsync, rename).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/file_util.h"
#include "common/tensor/dtype.h"

namespace glvq {

// A tensor to write; `data` is borrowed and must hold exactly
// product(shape) * DTypeSize(dtype) bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
};

// A tensor whose bytes are produced while the file is written
// (StreamSafetensorsModel): `bytes` must be product(shape) * DTypeSize(dtype).
struct TensorToStream {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
};

// Writes tensors[index]'s bytes, exactly tensors[index].bytes of them (in
// any number of Write calls).
using TensorDataWriter = std::function<absl::Status(size_t index, FileSink& sink)>;

// The complete header (length prefix + JSON + padding) for `tensors`, which
// is also the order their data must follow (returned in `order` as indices
// into `tensors`). INVALID_ARGUMENT on duplicate or empty names, negative
// dims, or a data size that does not match the shape.
absl::StatusOr<std::string> SerializeSafetensorsHeader(
    std::span<const TensorToWrite> tensors,
    const std::map<std::string, std::string>& metadata,
    std::vector<size_t>* order);

// Writes one safetensors file atomically.
absl::Status WriteSafetensors(const std::filesystem::path& path,
                              std::span<const TensorToWrite> tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Writes a model into directory `dir` (which must exist): `model.safetensors`
// if the tensors' data fits in `max_shard_bytes`, else shards
// `model-00001-of-0000N.safetensors` (tensors assigned in name order, a new
// shard started when the next tensor would exceed the limit) plus
// `model.safetensors.index.json`. Every file is written atomically.
absl::Status WriteSafetensorsModel(const std::filesystem::path& dir,
                                   std::span<const TensorToWrite> tensors,
                                   const std::map<std::string, std::string>& metadata = {},
                                   uint64_t max_shard_bytes = uint64_t{5} << 30);

// WriteSafetensorsModel for data that is not all in memory: the same files,
// byte for byte, but each tensor's bytes come from `write_data` as the file
// reaches them (in data order: decreasing dtype size, then name), so a
// caller can produce one tensor at a time. INVALID_ARGUMENT (before any
// file is written) as WriteSafetensorsModel; INTERNAL if `write_data`
// writes a different number of bytes than declared; its errors are passed
// on. Every file is written atomically.
absl::Status StreamSafetensorsModel(const std::filesystem::path& dir,
                                    std::span<const TensorToStream> tensors,
                                    const TensorDataWriter& write_data,
                                    const std::map<std::string, std::string>& metadata = {},
                                    uint64_t max_shard_bytes = uint64_t{5} << 30);

}  // namespace glvq
