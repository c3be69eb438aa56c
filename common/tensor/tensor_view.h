// A non-owning view of one tensor's bytes (row-major, little-endian), as
// found in a safetensors file. The viewed memory (usually an mmap) is owned
// by whoever produced the view and must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/tensor/dtype.h"

namespace glvq {

struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;        // empty for a scalar
  std::span<const std::byte> data;   // exactly NumElements() * DTypeSize(dtype)

  int64_t NumElements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// "[64, 172]"
std::string ShapeToString(const std::vector<int64_t>& shape);

}  // namespace glvq
