// Bit-level layout of the glvq packed format v1 (docs/format.md), shared by
// host C++ and CUDA device code.
//
// This header must compile as C++17 under nvcc and be usable in device code:
// it uses no std::span, no concepts and no library calls, only fixed-width
// integers and POD structs.
//
// Codes of one column group are a stream of `bits`-bit codes packed
// LSB-first: code k occupies stream bits [k*bits, k*bits + bits), where bit j
// of the stream is bit (j % 8) of byte j / 8, bit 0 being the least
// significant. Code k of a group of `width` columns is the weight at row
// k / width, group column k % width.
#pragma once

#include <stdint.h>

#include <type_traits>

#include "common/base/host_device.h"

namespace glvq::packed {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kMinCodeBits = 1;
inline constexpr uint32_t kMaxCodeBits = 8;
inline constexpr uint32_t kMaxLatticeDim = 32;

// Everything a decoder needs to locate and decode one column group, in a
// form that can be copied to a device as a flat array.
struct GroupDesc {
  uint64_t code_offset;  // byte offset of the group's stream in `codes`
  uint32_t first_col;    // first input column of the group
  uint32_t width;        // columns in the group (the last one may be narrower)
  uint32_t bits;         // bits per code, kMinCodeBits..kMaxCodeBits
  uint32_t dim;          // vector dimension d (1 for scalar methods)
};
static_assert(sizeof(GroupDesc) == 24, "GroupDesc is copied to devices as raw bytes");
static_assert(alignof(GroupDesc) == 8, "GroupDesc is copied to devices as raw bytes");
static_assert(std::is_trivially_copyable<GroupDesc>::value, "GroupDesc must be POD");
static_assert(std::is_standard_layout<GroupDesc>::value, "GroupDesc must be POD");

// Number of column groups of a tensor with `cols` columns.
GLVQ_HOST_DEVICE inline uint64_t NumColumnGroups(uint64_t cols, uint64_t group_size) {
  return (cols + group_size - 1) / group_size;
}

// Columns in group g: group_size, except for a narrower last group.
GLVQ_HOST_DEVICE inline uint64_t ColumnGroupWidth(uint64_t cols, uint64_t group_size,
                                                  uint64_t g) {
  const uint64_t first = g * group_size;
  const uint64_t left = cols - first;
  return left < group_size ? left : group_size;
}

// Bytes of a group's stream: rows * width codes of `bits` bits, rounded up
// to a whole byte (the padding bits are zero).
GLVQ_HOST_DEVICE inline uint64_t GroupCodeBytes(uint64_t rows, uint64_t width,
                                                uint32_t bits) {
  return (rows * width * bits + 7) / 8;
}

// Position of the first (least significant) bit of code k in its stream.
GLVQ_HOST_DEVICE inline uint64_t CodeBitPosition(uint64_t k, uint32_t bits) {
  return k * bits;
}

// Code k of a group stream with `bits` bits per code (1..8). Reads only the
// bytes that hold the code: a code of at most 8 bits starting at bit
// offset 0..7 of a byte spans at most two bytes, and the second byte is
// touched only when the code reaches into it, so this never reads past the
// end of a well-formed stream.
GLVQ_HOST_DEVICE inline uint32_t ExtractCode(const uint8_t* group_stream, uint64_t k,
                                             uint32_t bits) {
  const uint64_t bit = CodeBitPosition(k, bits);
  const uint8_t* p = group_stream + (bit >> 3);
  const uint32_t shift = static_cast<uint32_t>(bit & 7u);
  uint32_t word = p[0];
  if (shift + bits > 8u) word |= static_cast<uint32_t>(p[1]) << 8;
  return (word >> shift) & ((1u << bits) - 1u);
}

}  // namespace glvq::packed
