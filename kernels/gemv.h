// Matrix–vector products straight from a packed weight: y = W x for a
// quantized tensor W [rows, cols] (common/packed/quantized_tensor.h) and an
// F32 input x [cols], without materialising W. At batch 1 a decoder is
// memory-bound, so reading 2–4 bits per weight instead of 16 is the point.
//
//   GemvRef   the oracle: DequantizeRef (double, one rounding) times x, in
//             double. Any method. Allocates rows · cols floats.
//   Gemv      the fast path: rtn and e8p without materialising W (below);
//             other methods fall back to the oracle for now (see
//             HasFastGemv). An RHT-stored tensor is handled by transforming
//             x and y instead of W: W x = T_mᵀ (W̃ (T_n x)).
//
// rtn kernel (T-MAC-style lookup tables). Row r, group g: Σ_c w x_c =
// scale·(Σ_c code_c x_c − zero·Σ_c x_c). Codes of 2 (4) bits come 4 (2) to
// a byte, so for each byte position of a group row the partial sums
// Σ code·x over its 4 (2) columns take only 256 values: a table per byte
// position, built once per call from x (256 adds per 4 columns, shared by
// every row), turns each code byte into one load and one add. Groups whose
// rows do not start on a byte (width · bits not a multiple of 8), and 3-,
// 5–8-bit codes, take a plain unpack-and-multiply loop.
//
// e8p kernel. A codeword is c = s ⊙ a + t·1 (sign pattern s, abs vector
// a, shift t = ±¼), so c · x = Σ a_i (s_i x_i) + t Σ x_i: the signs flip x's
// sign bits (XOR masks from a table), the abs vector comes from a table of
// 256 float rows, and each codeword is eight lane-wise multiply-adds.
//
// Buffers: x holds cols floats, y rows floats; the caller owns both.
// Errors: INVALID_ARGUMENT for an invalid tensor or wrong sizes.
#pragma once

#include <span>

#include "absl/status/status.h"
#include "common/packed/quantized_tensor.h"

namespace glvq::kernels {

absl::Status GemvRef(const QuantizedTensor& w, std::span<const float> x, std::span<float> y);

absl::Status Gemv(const QuantizedTensor& w, std::span<const float> x, std::span<float> y);

// Whether Gemv has a kernel for w's method (else it calls GemvRef).
bool HasFastGemv(const QuantizedTensor& w);

}  // namespace glvq::kernels
