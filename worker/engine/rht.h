// Randomized Hadamard incoherence processing (docs/algorithms.md §1.6, QuIP#)
// for the engine: the quantizer sees W̃ = T_m W T_nᵀ and H̃ = T_n H T_nᵀ
// instead of W and H, which spreads outlier rows, columns and entries
// evenly over the matrix, and the decoder maps Ŵ̃ back with the same
// seeds. The transform itself is the format's (common/packed/hadamard.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/packed/hadamard.h"
#include "worker/engine/hessian.h"
#include "worker/engine/quantizer.h"

namespace glvq::engine {

// The row-side and column-side seeds of a tensor, derived from its
// Problem::seed (itself the config seed mixed with the tensor name).
RhtSeeds DeriveRhtSeeds(uint64_t problem_seed);

// W̃ = T_m W T_nᵀ and W = T_mᵀ W̃ T_n in place on a rows × cols row-major
// matrix; float matrices are transformed in double and rounded once.
void RhtForward(std::span<double> w, int64_t rows, int64_t cols, const RhtSeeds& seeds);
void RhtInverse(std::span<double> w, int64_t rows, int64_t cols, const RhtSeeds& seeds);
void RhtForward(std::span<float> w, int64_t rows, int64_t cols, const RhtSeeds& seeds);
void RhtInverse(std::span<float> w, int64_t rows, int64_t cols, const RhtSeeds& seeds);

// W̃ of a weight view, as a new rows × cols row-major matrix.
std::vector<float> RhtTransformWeight(MatrixView w, const RhtSeeds& seeds);

// H̃ = T_n H T_nᵀ of an already damped Hessian (the identity stays the
// identity). Damping commutes with the transform (T (H + λI) Tᵀ = THTᵀ + λI
// and the trace is invariant), so H̃ is not damped again.
absl::StatusOr<PreparedHessian> RhtTransformHessian(const PreparedHessian& h,
                                                    uint64_t col_seed);

// The `rht_seed` component of a tensor quantized under `seeds`.
std::vector<int64_t> RhtSeedComponent(const RhtSeeds& seeds);

// `c` with the transform switched on. The lattice quantizers (e8p, pvq)
// always run under it: their codebooks and gain levels assume the
// near-Gaussian, incoherent weights it produces.
inline quant::QuantizerConfig WithRht(quant::QuantizerConfig c) {
  c.rht = true;
  return c;
}

}  // namespace glvq::engine
