// Launch functions of the packed-format kernels: code packing (format v1,
// LSB-first, common/packed/layout.h) and the GLVQ dequantizer. C++17, no
// absl (nvcc reads it). Pointers prefixed d_ are device memory owned by the
// caller; each function returns the launch status.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/packed/layout.h"

namespace glvq::cuda {

// One group of a packing job: its rows × width codes (one byte each) are
// read from src[src_offset + r·src_ld + c] and packed as code k = r·width + c
// into the stream starting at dst byte dst_offset, PackedBytes(rows·width,
// bits) bytes, padding bits zero. Codes are masked to `bits` bits.
struct PackGroup {
  uint64_t src_offset;
  uint64_t dst_offset;
  uint32_t src_ld;
  uint32_t width;
  uint32_t bits;
  uint32_t reserved;
};

// Packs `groups` groups (d_groups: [groups]) of `rows` rows each;
// `max_bytes` is the largest stream of one group (sizes the grid).
cudaError_t LaunchPackCodes(const PackGroup* d_groups, int32_t groups, int64_t rows,
                            uint64_t max_bytes, const uint8_t* d_src, uint8_t* d_dst);

// Per-group side information of a GLVQ tensor on the device, [groups] each.
struct GlvqSideInfo {
  const packed::GroupDesc* groups;  // code offsets, widths, bits, d
  const float* generators;          // [groups, d, d] row-major
  const float* mu;
  const double* log1p_mu;  // std::log1p(double(mu)), from the host
  const float* scale;
};

// Where the dequantizer records weights whose float rounding it cannot
// vouch for (see LaunchDequantizeGlvq): indices into the output, at most
// `capacity`; *count counts every such weight, stored or not.
struct RoundingFlags {
  uint64_t* indices;
  uint32_t* count;
  uint32_t capacity;
};

// Dense F32 weights (rows × cols, row-major) of a GLVQ tensor without RHT,
// computed as DequantizeRef does (double, same order, no FMA, one rounding
// to float). The device's expm1 may differ from the host libm's in the
// last bit; a companded weight whose double value lies so close to a float
// rounding boundary that such a difference could change the float is
// flagged for the host to recompute.
cudaError_t LaunchDequantizeGlvq(const uint8_t* d_codes, GlvqSideInfo side, int32_t groups,
                                 int64_t rows, int64_t cols, int64_t max_vectors_per_row,
                                 float* d_out, RoundingFlags flags);

}  // namespace glvq::cuda
