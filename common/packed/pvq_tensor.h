// The "pvq" method of the packed format (docs/format.md §4.7): layout,
// validation, packing and decoding of its record streams. Used by
// quantized_tensor.cc; producers pack through PackPvqCodes.
//
// Row r of group g holds ⌊width_g / D⌋ whole D-vectors and, when D does not
// divide width_g, one short vector of k_g = width_g mod D coordinates. Each
// vector is one record: its pyramid index (⌈log2 N(D, K_g)⌉ bits, or
// ⌈log2 N(k_g, K'_g)⌉ for the short one) then its gain code (b bits),
// LSB-first, records back to back, rows back to back.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/packed/quantized_tensor.h"

namespace glvq {

// D-vectors per row of a group of `width` columns, a short one included:
// ceil(width / dim).
int64_t PvqVectorsPerRow(int64_t width, int64_t dim);

// Rows of the `gains` component: 2 (whole and short vectors) if some group
// of the tensor's geometry has a short vector, else 1.
int64_t PvqGainRows(const QuantizedTensor& qt);

// Gain code bits of a tensor: log2 of the gain levels per row when that is
// a power of two in 1..256, else -1.
int PvqGainBits(const QuantizedTensor& qt);

// Checks the pvq side information of a tensor whose scalars are valid:
// pulses [G, 2] with countable pyramids (pvq::CountPyramid) and K'_g = 0
// exactly when group g has no short vector, gains [S, 2^b] (b in 0..8)
// finite, norms [rows] finite and >= 0, no bits, generators, mu, scale or
// zero, and offsets exactly as the records imply. INVALID_ARGUMENT naming
// the tensor and the first problem.
absl::Status ValidatePvqLayout(const QuantizedTensor& qt);

// Checks a laid-out tensor's streams in `codes`: padding bits zero and every
// index below its pyramid's size.
absl::Status ValidatePvqCodes(const QuantizedTensor& qt, std::span<const uint8_t> codes);

// Code bits proper of a valid pvq tensor: index and gain bits of every record.
uint64_t PvqPayloadBits(const QuantizedTensor& qt);

// The weights of a valid pvq tensor (before undoing any RHT), rows × cols
// row-major, in double precision as docs/format.md §4.7 specifies.
absl::Status DecodePvq(const QuantizedTensor& qt, std::span<double> out);

// Unpacked records of a tensor: record j (groups in order, each row-major
// over rows and vectors) has its index in indices[j·words, (j+1)·words)
// (little-endian words, above its pyramid's index bits zero) and its gain
// code in gain_codes[j].
struct PvqCodes {
  int words = 1;
  std::vector<uint64_t> indices;
  std::vector<uint8_t> gain_codes;
};

// Fills qt->offsets and qt->codes from `codes`, using qt's shape, dim,
// pulses and gains (which must be valid). INVALID_ARGUMENT if the record
// count or word stride does not match, or a gain code is out of range.
absl::Status PackPvqCodes(const PvqCodes& codes, QuantizedTensor* qt);

}  // namespace glvq
