// Salience-driven bit allocation (docs/algorithms.md §1.4): per-group bit widths
// whose weight-averaged mean is exactly the target.
#pragma once

#include <Eigen/Dense>
#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/quant/config.h"
#include "worker/engine/hessian.h"

namespace glvq::cpu {

// OBS salience of each column group: Σ_{rows, j∈g} W[:, j]² / U_jj², U the
// upper Cholesky factor of H⁻¹ (Σ w² diag(H)-like; Σ w² for the identity).
std::vector<double> GroupSalience(const Eigen::MatrixXd& w, const engine::PreparedHessian& h,
                                  int64_t group_size);
// The same from the column energies Σ_rows W[:, j]² (one per column), for
// a backend that computes them elsewhere (worker/cuda/).
std::vector<double> GroupSalienceFromEnergies(std::span<const double> column_energy,
                                              const engine::PreparedHessian& h,
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

// AllocateBits from figures computed by a backend: the groups' salience and,
// asked only when an integer target needs them, the RTN proxy of each of the
// first `full_groups` (full-width) groups at widths N−1, N, N+1: the
// Hessian-weighted error tr(Δ H_gg Δᵀ) of per-row absmax midrise RTN.
using RtnProxyTable = std::vector<std::array<double, 3>>;
using RtnProxyFn = std::function<absl::StatusOr<RtnProxyTable>(int n, int64_t full_groups)>;
absl::StatusOr<std::vector<int>> AllocateBitsWith(std::span<const double> salience, int64_t cols,
                                                  int64_t group_size, double target_bits,
                                                  const RtnProxyFn& proxies);

// Bits of each of the `num_groups` groups of tensor `name`: config.bits
// everywhere, or AllocateBits' widths with config.sdba (INVALID_ARGUMENT
// prefixed with the name when the target cannot be realised).
absl::StatusOr<std::vector<int>> GroupBits(const std::string& name, const Eigen::MatrixXd& w,
                                           const engine::PreparedHessian& h, int64_t num_groups,
                                           const quant::QuantizerConfig& config);

}  // namespace glvq::cpu
