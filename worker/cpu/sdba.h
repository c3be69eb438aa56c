// Salience-driven bit allocation (ALGORITHMS.md §1.4): per-group bit widths
// whose weight-averaged mean is exactly the target.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/engine/hessian.h"

namespace glvq::cpu {

// OBS salience of each column group: Σ_{rows, j∈g} W[:, j]² / U_jj², U the
// upper Cholesky factor of H⁻¹ (Σ w² diag(H)-like; Σ w² for the identity).
std::vector<double> GroupSalience(const Eigen::MatrixXd& w, const engine::PreparedHessian& h,
                                  int64_t group_size);

// Bits per group. Integer target N: widths {N−1, N, N+1}, as many groups
// at N+1 as at N−1 (most and least salient full-width groups), the count
// chosen by an RTN proxy of the Hessian-weighted loss; the narrower last
// group keeps N. Fractional target: floor and floor+1 mixed so that the
// weight-averaged width is exactly the target, the most salient groups
// getting the extra bit; INVALID_ARGUMENT naming the nearest achievable
// rates when the group widths cannot realise the target exactly.
absl::StatusOr<std::vector<int>> AllocateBits(const Eigen::MatrixXd& w,
                                              const engine::PreparedHessian& h,
                                              int64_t group_size, double target_bits);

}  // namespace glvq::cpu
