// A linear layer whose weight is a fixed matrix between tunable gains:
//
//   W = T_mᵀ · diag(a) · B · diag(b) · T_n,   a = exp(α) [rows],  b = exp(β) per column group
//
// B is a quantized weight decoded in the basis its codes live in (with the
// gains the packed tensor stores), T_m and T_n its randomized Hadamard
// transforms (identity for a tensor without `rht_seed`). a and b scale the
// gains the packed format already stores (a trellis tensor's row_scale and
// group scale, for instance), so tuning them costs no bits. They are kept
// as logarithms so that they stay positive, as the format requires.
//
// Forward and Backward work on the rows of an activation matrix [tokens,
// in] → [tokens, out]; Backward accumulates dL/dα and dL/dβ and returns
// dL/dx. The transforms are applied per token, O(n log n), so a layer costs
// the two GEMMs of a dense one.
#pragma once

#include <cstdint>
#include <optional>

#include "common/packed/hadamard.h"
#include "model/llama.h"

namespace glvq::model {

struct GainLinear {
  RowMatrix base;                  // B [rows, cols]
  std::optional<RhtSeeds> rht;     // T_m, T_n; absent: identity
  int64_t group_size = 0;          // columns per β entry (> 0)
  bool tune_rows = false;          // whether α may move (the format can store it)
  bool tune_groups = false;        // whether β may move
  Eigen::VectorXf log_row_gain;    // α [rows], starts at 0
  Eigen::VectorXf log_group_gain;  // β [ceil(cols / group_size)], starts at 0
  Eigen::VectorXf bias;            // [rows] or empty; frozen

  // A layer with B = `base`, zero α and β. Transforms are built on use.
  static GainLinear Make(RowMatrix base, std::optional<RhtSeeds> rht, int64_t group_size,
                         bool tune_rows, bool tune_groups, Eigen::VectorXf bias = {});

  int64_t rows() const { return base.rows(); }
  int64_t cols() const { return base.cols(); }
  int64_t groups() const { return log_group_gain.size(); }

  // W as a dense matrix (for evaluation with LlamaModel and for tests).
  RowMatrix Dense() const;
};

// What Backward needs from Forward: the input in B's basis scaled by b, and
// the output before the row gains.
struct GainLinearTape {
  RowMatrix rotated_in;  // T_n x per token [tokens, cols]
  RowMatrix pre_gain;    // (T_n x ⊙ b) Bᵀ [tokens, rows]
};

struct GainLinearGrad {
  Eigen::VectorXd log_row_gain;    // dL/dα [rows]
  Eigen::VectorXd log_group_gain;  // dL/dβ [groups]
  void Resize(const GainLinear& l);
};

// y = x Wᵀ + bias for x [tokens, cols]; fills `tape` when given.
RowMatrix Forward(const GainLinear& l, const RowMatrix& x, GainLinearTape* tape);

// dL/dx for dL/dy `dy` [tokens, rows]; adds dL/dα and dL/dβ to `grad`
// (sized by Resize) for the gains that may move.
RowMatrix Backward(const GainLinear& l, const GainLinearTape& tape, const RowMatrix& dy,
                   GainLinearGrad& grad);

// Replaces every row v of x [tokens, n] by T v (or Tᵀ v with `inverse`),
// through double precision.
void TransformRows(const RandomizedHadamard& t, bool inverse, RowMatrix& x);

}  // namespace glvq::model
