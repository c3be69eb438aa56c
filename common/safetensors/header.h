// Parsing and validation of safetensors headers.
//
// File layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON
// (an object: tensor name -> {"dtype", "shape", "data_offsets": [begin, end]},
// plus an optional "__metadata__" object of string -> string), then the data
// section. Offsets are relative to the start of the data section.
//
// Validation is total: a header that passes can be indexed without further
// checks (every span is inside the file, spans tile the data section without
// holes or overlaps, sizes match shapes without overflow).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor/dtype.h"

namespace glvq {

// Headers above this size are rejected before any parsing (bytes).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct TensorEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset in the data section
  uint64_t end = 0;    // one past the last byte; end - begin == elements * dtype size
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;           // sorted by name
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;                    // 8 + header length, in bytes
  uint64_t data_size = 0;                      // bytes in the data section
};

// Parses and fully validates the header of a safetensors file whose complete
// contents are `file`. Errors are INVALID_ARGUMENT with a message naming the
// problem (and the tensor, where there is one) but not the file, which the
// caller adds.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(
    std::span<const std::byte> file);

}  // namespace glvq
