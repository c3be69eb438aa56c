// The GPTQ sweep's processing order and what depends on it (docs/algorithms.md
// §3.2), prepared on the host for the CPU reference and the CUDA engine.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "worker/cpu/gptq_row.h"
#include "worker/engine/hessian.h"

namespace glvq::cpu {

struct GptqSweep {
  std::vector<int64_t> order;  // position k quantizes original column order[k]
  Eigen::MatrixXd u;           // chol(H⁻¹) upper, H taken in `order`
  std::vector<double> diag;    // diag(H) of the original columns
  // Act order visits a group's columns out of sequence, so its grids are
  // fitted upfront on the original weights (GPTQ's "static groups"): the
  // format's groups are consecutive original columns.
  bool static_groups = false;

  // GptqSweepRow's view of these arrays (host memory, owned by *this).
  GptqSweepView View(int bits, bool min_max) const {
    return {u.data(), order.data(), diag.data(), u.cols(), bits, min_max, static_groups};
  }
};

// The sweep over `cols` columns with damped Hessian `h`; act_order visits
// columns by decreasing diag(H) (stable).
GptqSweep PrepareGptqSweep(const engine::PreparedHessian& h, int64_t cols, bool act_order);

}  // namespace glvq::cpu
