// The "trellis" method's tensor layout (docs/format.md §4.8) on top of the
// trellis code of trellis_code.h: validation, byte sizes and the reference
// decoder, called from quantized_tensor.cc.
//
// Layout. Columns are cut into groups as for every method, and rows into
// tiles of R = tile_rows consecutive rows (1…64; the last tile holds the
// rows − ⌊rows / R⌋·R left over when R does not divide rows). Tile j of
// group g, rows [jR, jR + n_j), is one tail-biting trellis sequence of
// T = n_j · width_g weights, row-major (row jR's width_g weights, then row
// jR + 1's, …), at k_g = bits[g] bits each (1…4). It occupies
// StreamBytes(T, k_g) bytes of its own (byte-aligned, so every tile decodes
// on its own), tiles one after the other: group g's stream is at
// codes[offsets[g]]. With R = 1 (the default, and the only layout before
// tiles existed) each row of a group is one sequence; QTIP-style 2-D tiles
// (R = 16 with 16-column groups) keep sequences long while the feedback
// blocks of BlockLDLQ stay narrow. The tensor's `dim` is the trellis
// window L (state bits); a sequence shorter than the window uses
// L_j = min(L, T · k_g). Weight (r, c) decodes to s_rg · V_{L_j}(W_t), t its
// index in its tile's sequence, with the scale s_rg = row_scale[r] ·
// scale[g], one float product: a rank-one (row gain × group gain) scale
// model costing 32 bits per row and group.
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

// Largest tile_rows. The quantizer writes powers of two up to it, which
// divide its row blocks (checked where they meet, in
// worker/cpu/trellis_quantizer.cc).
inline constexpr int64_t kMaxTrellisTileRows = 64;

// Window of a sequence of `length` weights: min(L, length · bits) (at least
// `bits`, since length ≥ 1).
int TrellisGroupWindow(int64_t window, int64_t length, int bits);

// Rows of tile j (0-based) of a tensor with `rows` rows: min(R, rows − jR).
int64_t TrellisTileRows(int64_t rows, int64_t tile_rows, int64_t tile);

// Number of tiles per group: ceil(rows / tile_rows).
int64_t TrellisTileCount(int64_t rows, int64_t tile_rows);

// Bytes of one group's stream: the tiles' StreamBytes(n_j · width, bits).
int64_t TrellisGroupBytes(int64_t rows, int64_t width, int bits, int64_t tile_rows);

// Byte offsets of the group streams ([G+1] entries) for per-group `bits`
// and tiles of `tile_rows` rows (1…kMaxTrellisTileRows).
std::vector<int64_t> TrellisGroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                         std::span<const uint8_t> bits, int64_t tile_rows = 1);

// Bits 1…4 in every group and a supported window (dim, 1…20); row_scale
// [rows] finite and ≥ 0 (a zero row decodes to zeros); scale [G] finite and
// > 0; no other side information. INVALID_ARGUMENT naming the tensor and the problem.
absl::Status ValidateTrellisSideInfo(const QuantizedTensor& qt);

// Every tile stream's padding bits are zero (one encoding per tensor).
// Assumes valid offsets and `codes` of offsets[G] bytes.
absl::Status ValidateTrellisCodes(const QuantizedTensor& qt, std::span<const uint8_t> codes);

// The reference decoder: rows × cols F32 values (as the codes describe them,
// before any inverse RHT) into `out`. Assumes a valid tensor.
void DecodeTrellis(const QuantizedTensor& qt, std::span<float> out);

}  // namespace glvq
