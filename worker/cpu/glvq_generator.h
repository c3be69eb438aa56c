// The small per-group algebra of GLVQ learning (docs/algorithms.md §1.3) on d × d
// (and d² × d²) matrices: µ₀ and G₀, the closed-form G update from the
// code Gram sums, singular-value clipping and the Adam step. Shared by the
// CPU reference (glvq_group.cc) and the CUDA engine (worker/cuda/), which
// computes the sums over rows on the device and calls these on the host, so
// that both backends run the same update arithmetic.
#pragma once

#include <Eigen/Dense>
#include <cstdint>

#include "common/packed/quantized_tensor.h"
#include "common/quant/config.h"
#include "worker/engine/quantizer.h"

namespace glvq::cpu {

// µ₀ = clip(100·tanh(κ/10), µ_min, µ_max) for sample kurtosis κ; 0 when
// companding is off (µ_max below kMuOff).
double InitialMuFromKurtosis(double kurtosis, const quant::GlvqOptions& options);

// G₀ = α_b · chol(cov + ridge): `cov_sum` = Σ over the group's full
// d-vectors of y yᵀ, `vectors` their count (0: the group is narrower than
// d, and `mean_square` = mean(y²) over the group stands in).
Eigen::MatrixXd InitialGeneratorFromCovariance(Eigen::MatrixXd cov_sum, double vectors,
                                               double mean_square, int bits);

// λ scaled by the number of full vectors: λ · max(full_vectors, 1).
double GeneratorRegulariser(const quant::GlvqOptions& options, int64_t full_vectors);

// Plain least squares G = (Σ y zᵀ + λG₀)(Σ z zᵀ + λI)⁻¹ from the
// regularised sums a = λI + Σ_j Z_jᵀZ_j and b = λG₀ + Σ_j Y_jᵀZ_j (d × d).
Eigen::MatrixXd SolvePlainGenerator(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

// Hessian-weighted least squares [Σ_kl A_lkᵀ ⊗ H_kl + λh̄ I] vec(G) =
// vec(Σ_kl H_kl B_lk + λh̄ G₀) over the `blocks` full d-blocks: `gzz` =
// Z_fᵀ Z_f and `gyz` = Y_fᵀ Z_f (nf × nf, nf = blocks·d, the leading
// columns of the group), `h` the group's Hessian block (≥ nf × nf), `lam`
// from GeneratorRegulariser.
Eigen::MatrixXd SolveHessianGenerator(const Eigen::MatrixXd& gzz, const Eigen::MatrixXd& gyz,
                                      const Eigen::MatrixXd& h, const Eigen::MatrixXd& g0,
                                      double lam, int64_t d, int64_t blocks);

double GeometricMeanSingularValue(const Eigen::MatrixXd& g);

// Clips G's singular values to [0.1, 10] × `g_ref`.
Eigen::MatrixXd ClipSingularValues(const Eigen::MatrixXd& g, double g_ref);

// Finite and not collapsed (geometric mean singular value > 1e-6 g_ref).
bool GeneratorUsable(const Eigen::MatrixXd& g, double g_ref);

// Adam on (G, log µ) (β = 0.9, 0.999), step refine_lr × g_ref for G and
// refine_lr for log µ; G's singular values clipped after every step, µ
// projected to [max(µ_min, kMuOff), µ_max]. µ is learned only when the
// range is open and companding is on.
class GeneratorAdam {
 public:
  GeneratorAdam(const Eigen::MatrixXd& g, double mu, double g_ref,
                const quant::GlvqOptions& options);
  // One step (`step` counts from 1) with the gradient at the current point.
  void Step(int step, const Eigen::MatrixXd& dg, double dmu);
  const Eigen::MatrixXd& g() const { return g_; }
  double mu() const { return mu_; }

 private:
  quant::GlvqOptions o_;
  bool learn_mu_;
  double g_ref_;
  Eigen::MatrixXd g_, mg_, vg_;
  double mu_, theta_, mt_ = 0, vt_ = 0;
};

// Appends one learned group to `t` in the layout both engines write (bits,
// scale, µ, G row-major as F32; codes are packed separately) and fills
// `stats` (bits, µ, iterations).
void AppendGroupSideInfo(int bits, float scale, float mu, const Eigen::MatrixXd& g,
                         int iterations, QuantizedTensor* t, quant::GroupStats* stats);

}  // namespace glvq::cpu
