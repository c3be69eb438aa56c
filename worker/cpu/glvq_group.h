// Learning one GLVQ column group (docs/algorithms.md §1.2–1.3): scale, µ-law
// companding, generator G, Babai codes; alternating closed-form G updates,
// Adam refinement of G and log µ on the true loss, keep-best.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "common/quant/config.h"

namespace glvq::cpu {

// One group: `w` is rows × width (the group's columns), `h` its width ×
// width diagonal Hessian block (identity for plain MSE).
struct GroupProblem {
  const Eigen::MatrixXd* w = nullptr;
  const Eigen::MatrixXd* h = nullptr;
  bool h_is_identity = true;
  // Optional rows × 1 weights ρ_r ≥ 0 of each row's error (the row gains²
  // when `w` holds gain-normalised rows): the loss is Σ_r ρ_r δ_r H δ_rᵀ.
  // Null: every row weighs 1.
  const Eigen::VectorXd* row_weight = nullptr;
  int bits = 2;
  int dim = 8;
  quant::GlvqOptions options;
};

struct GroupSolution {
  float scale = 1.0f;          // s_g, as stored (F32)
  float mu = 0.0f;             // µ_g, as stored (F32)
  Eigen::MatrixXd g;           // d × d generator, F32-representable
  std::vector<uint8_t> codes;  // rows × width, row-major, 0 … 2^bits − 1
  double loss = 0;             // tr(ΔW H ΔWᵀ) in weight units
  int iterations = 0;          // alternations run
};

// Optimal uniform step for N(0, 1) with 2^bits midrise levels (bits 1..8).
double UniformStepForGaussian(int bits);

GroupSolution SolveGlvqGroup(const GroupProblem& problem);

// Babai rounding of a companded group `y` (rows × width) with generator `g`
// (dim × dim) at `bits` bits: the half-integer lattice coordinates
// z = clamp(⌊G⁻¹y⌋, −2^(b−1), 2^(b−1)−1) + ½ per d-vector, a row's short last
// vector rounded with G's leading block. The oracle of the CUDA kernel.
Eigen::MatrixXd BabaiCoordinates(const Eigen::MatrixXd& y, const Eigen::MatrixXd& g, int dim,
                                 int bits);

// The true loss tr(ΔW H ΔWᵀ) of generator `g`, companding `mu` and lattice
// coordinates `z` (rows × width half-integers) on the group, in units of the
// normalised weights W/s, with its gradient: the quantity the Adam
// refinement descends, exposed for gradient checks.
struct GroupLossGradient {
  double loss = 0;
  Eigen::MatrixXd dg;  // ∂loss/∂G, d × d
  double dmu = 0;      // ∂loss/∂µ
};
GroupLossGradient EvaluateGroupLoss(const GroupProblem& problem, const Eigen::MatrixXd& g,
                                    double mu, const Eigen::MatrixXd& z);

}  // namespace glvq::cpu
