// The scalar grids of the packed "rtn" method (docs/format.md §4.2), one
// per (row, column group): w = scale · (code − zero). Shared by RTN and
// GPTQ so that both choose a row-group's grid the same way
// (ALGORITHMS.md §3.1).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "worker/engine/config.h"
#include "worker/engine/problem.h"

namespace glvq::cpu {

// Both fields are held as the F32 values the format stores, so that
// Decode() is bit-identical to the reference decoder.
struct ScalarGrid {
  float scale = 1.0f;  // > 0, finite
  float zero = 0.0f;   // finite; an integer for min–max, 2^(b−1) − ½ for midrise
  int max_code = 1;    // 2^b − 1

  // The code of the level nearest to `w` (clamped to the grid's range).
  uint8_t Encode(double w) const;
  // The weight DequantizeRef decodes `code` to.
  double Decode(uint8_t code) const;
};

// The grid of one row-group with `bits` bits per code (1..8):
//  - kMinMax: asymmetric over [min(v, 0), max(v, 0)] with an integer zero
//    point (GPTQ's convention: the range always holds 0, so the zero point
//    never needs clamping and 0 is exactly representable);
//  - kClipSearch: symmetric midrise whose outermost level is clip · max|v|,
//    clip searched over 1.00, 0.99, … 0.10 for the least
//    Σ importance_i (v_i − v̂_i)² (the first, largest clip wins ties).
// `importance` has one non-negative weight per value (diag H, or ones).
// A row-group of zeros gets a grid that decodes to exactly 0; the scale is
// always positive and finite.
ScalarGrid FitScalarGrid(std::span<const double> values, std::span<const double> importance,
                         int bits, engine::RtnVariant variant);

// Codes and grids of a whole matrix, laid out as the "rtn" tensor stores
// them: grid (g, r) at g·rows + r; group g's codes row-major from
// CodeOffset(g) on.
struct ScalarQuantization {
  ScalarQuantization(int64_t rows, int64_t cols, int64_t group_size);

  int64_t CodeOffset(int64_t g) const { return rows * g * group_size; }
  int64_t GroupWidth(int64_t g) const;
  ScalarGrid& grid(int64_t g, int64_t r) { return grids[g * rows + r]; }
  uint8_t& code(int64_t g, int64_t r, int64_t c) {
    return codes[CodeOffset(g) + r * GroupWidth(g) + c];
  }

  int64_t rows, cols, group_size, num_groups;
  std::vector<ScalarGrid> grids;
  std::vector<uint8_t> codes;
};

// Packs `q` into result->tensor (method "rtn", d = 1, `bits` in every
// group) and records each group's bits.
absl::Status AssembleRtnTensor(const engine::Quantizer::Problem& p,
                               const engine::QuantizerConfig& config, int bits,
                               const ScalarQuantization& q, engine::QuantizeResult* result);

}  // namespace glvq::cpu
