// The scalar grids of the packed "rtn" method (docs/format.md §4.2), one
// per (row, column group): w = scale · (code − zero). Shared by RTN and
// GPTQ so that both choose a row-group's grid the same way
// (docs/algorithms.md §3.1).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "worker/cpu/scalar_grid_core.h"
#include "common/quant/config.h"
#include "worker/engine/problem.h"

namespace glvq::cpu {

// The grid of one row-group with `bits` bits per code (1..8), fitted as
// FitScalarGridOf (scalar_grid_core.h) describes for `variant`;
// `importance` has one non-negative weight per value (diag H, or ones).
ScalarGrid FitScalarGrid(std::span<const double> values, std::span<const double> importance,
                         int bits, quant::RtnVariant variant);

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
  // The same arrays for code shared with the CUDA kernels.
  ScalarCodesView view() { return {grids.data(), codes.data(), rows, cols, group_size}; }

  int64_t rows, cols, group_size, num_groups;
  std::vector<ScalarGrid> grids;
  std::vector<uint8_t> codes;
};

// Packs `q` into result->tensor (method "rtn", d = 1, `bits` in every
// group) and records each group's bits.
absl::Status AssembleRtnTensor(const engine::Quantizer::Problem& p,
                               const quant::QuantizerConfig& config, int bits,
                               const ScalarQuantization& q, quant::QuantizeResult* result);

}  // namespace glvq::cpu
