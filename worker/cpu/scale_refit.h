// Refitting the scales of a coded tensor to the Hessian-weighted loss.
//
// Methods that store ŵ[r, c] = s_r · c_g · t[r, c] (a row gain s_r, a group
// gain c_g for the group of column c, and scale-free code values t) choose
// the gains before coding, from RMS statistics. Once the codes are fixed,
// the loss tr((W − Ŵ) H (W − Ŵ)ᵀ) is quadratic in the row gains for fixed
// group gains and in the group gains for fixed row gains, so each has a
// closed-form optimum: per row s_r = (w_r H v_rᵀ) / (v_r H v_rᵀ) with
// v_r = Σ_g c_g t_rg, and for the groups the G × G normal equations
// A c = b, A = Sᵀ (H ∘ Tᵀ diag(s²) T) S, b = Sᵀ colsum(diag(s) T ∘ W H)
// (S: the n × G column-to-group indicator). Codes never change, so the
// stored format is the same; only the gains move.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <vector>

namespace glvq::cpu {

// Row/group alternations the quantizers use: on SmolLM2 the loss stops
// moving after three (ten gave the same proxy loss to four digits).
inline constexpr int kScaleRefitRounds = 3;

struct ScaleRefitStats {
  double loss_before = 0;  // tr(ΔW H ΔWᵀ) with the gains passed in
  double loss_after = 0;   // with the gains returned (≤ loss_before)
  int steps_kept = 0;      // row or group steps that lowered the loss
};

// w: rows × n targets (the coded domain, e.g. after RHT); t: rows × n code
// values at unit gains; h: n × n Hessian, or null for the identity (plain
// MSE); columns in groups of `group_size` (the last may be narrower).
// `row` ([rows], ≥ 0; 0 keeps a row at zero) and `group` ([G], > 0) are
// updated in place, F32 as stored. Alternates a row step and a group step
// `rounds` times; a step is kept only if it lowers the loss computed with
// the F32 gains, so the result is never worse than the input.
ScaleRefitStats RefitRankOneScales(const Eigen::MatrixXd& w, const Eigen::MatrixXd& t,
                                   const Eigen::MatrixXd* h, int64_t group_size, int rounds,
                                   std::vector<float>* row, std::vector<float>* group);

}  // namespace glvq::cpu
