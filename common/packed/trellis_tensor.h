// The "trellis" method's tensor layout (docs/format.md §4.8) on top of the
// trellis code of trellis_code.h: validation, byte sizes and the reference
// decoder, called from quantized_tensor.cc.
//
// Layout. Columns are cut into groups as for every method. Group g codes
// each row's width_g weights as one tail-biting trellis sequence of
// T = width_g weights at k_g = bits[g] bits each (1…4). A row's sequence
// occupies StreamBytes(width_g, k_g) bytes of its own (byte-aligned, so
// any row of any group decodes on its own), rows one after the other:
// group g's stream is rows · StreamBytes(width_g, k_g) bytes at
// codes[offsets[g]]. The tensor's `dim` is the trellis window L (state
// bits); a group whose sequence is shorter than the window uses
// L_g = min(L, width_g · k_g). Weight (r, c) of group g decodes to
// s_rg · V_{L_g}(W_t) (t = c − first column of the group) with the sequence
// scale s_rg = row_scale[r] · scale[g], one float product: a rank-one
// (row gain × group gain) scale model costing 32 bits per row and group.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "common/packed/quantized_tensor.h"

namespace glvq {

// The sequence scale s_rg = row_scale[row] · scale[group], in float: the
// value the encoder and every decoder use.
float TrellisSequenceScale(const QuantizedTensor& qt, int64_t row, int64_t group);

// Window of a group: min(L, width · bits) (at least `bits`, since width ≥ 1).
int TrellisGroupWindow(int64_t window, int64_t width, int bits);

// Byte offsets of the group streams ([G+1] entries) for per-group `bits`.
std::vector<int64_t> TrellisGroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                         std::span<const uint8_t> bits);

// Bits 1…4 in every group and a supported window (dim, 1…20); row_scale
// [rows] finite and ≥ 0 (a zero row decodes to zeros); scale [G] finite and
// > 0; no other side information. INVALID_ARGUMENT naming the tensor and the problem.
absl::Status ValidateTrellisSideInfo(const QuantizedTensor& qt);

// Every row stream's padding bits are zero (one encoding per tensor).
// Assumes valid offsets and `codes` of offsets[G] bytes.
absl::Status ValidateTrellisCodes(const QuantizedTensor& qt, std::span<const uint8_t> codes);

// The reference decoder: rows × cols F32 values (as the codes describe them,
// before any inverse RHT) into `out`. Assumes a valid tensor.
void DecodeTrellis(const QuantizedTensor& qt, std::span<float> out);

}  // namespace glvq
