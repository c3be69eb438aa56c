#include "worker/cpu/glvq_generator.h"

#include <algorithm>
#include <cmath>

#include "worker/cpu/companding.h"
#include "worker/cpu/glvq_group.h"

namespace glvq::cpu {

using Eigen::MatrixXd;
using Eigen::VectorXd;

double InitialMuFromKurtosis(double kurtosis, const quant::GlvqOptions& o) {
  if (o.mu_max < kMuOff) return 0.0;
  return std::clamp(100.0 * std::tanh(kurtosis / 10.0), o.mu_min, o.mu_max);
}

MatrixXd InitialGeneratorFromCovariance(MatrixXd cov, double n, double m2, int bits) {
  const int64_t d = cov.rows();
  if (n > 0) {
    cov /= n;
  } else {
    cov = MatrixXd::Identity(d, d) * m2;  // group narrower than d
  }
  const double ridge = std::max(1e-8 * cov.trace() / static_cast<double>(d), 1e-12);
  cov.diagonal().array() += ridge;
  return UniformStepForGaussian(bits) * MatrixXd(cov.llt().matrixL());
}

double GeneratorRegulariser(const quant::GlvqOptions& o, int64_t full_vectors) {
  return o.lambda * static_cast<double>(std::max<int64_t>(full_vectors, 1));
}

MatrixXd SolvePlainGenerator(const MatrixXd& a, const MatrixXd& b) {
  return a.ldlt().solve(b.transpose()).transpose();
}

MatrixXd SolveHessianGenerator(const MatrixXd& gzz, const MatrixXd& gyz, const MatrixXd& h,
                               const MatrixXd& g0, double lam, int64_t d, int64_t nb) {
  const int64_t nf = nb * d;
  const double hbar = h.diagonal().head(nf).mean();
  MatrixXd m = MatrixXd::Identity(d * d, d * d) * (lam * hbar);
  MatrixXd rhs = lam * hbar * g0;
  for (int64_t k = 0; k < nb; ++k) {
    for (int64_t l = 0; l < nb; ++l) {
      const MatrixXd a_lk = gzz.block(l * d, k * d, d, d);
      const auto h_kl = h.block(k * d, l * d, d, d);
      rhs.noalias() += h_kl * gyz.block(l * d, k * d, d, d);
      for (int64_t i = 0; i < d; ++i) {  // (A_lkᵀ ⊗ H_kl): block (i, j) = A_lk(j, i) H_kl
        for (int64_t j = 0; j < d; ++j) m.block(i * d, j * d, d, d) += a_lk(j, i) * h_kl;
      }
    }
  }
  const VectorXd vec_g = m.ldlt().solve(Eigen::Map<const VectorXd>(rhs.data(), d * d));
  return Eigen::Map<const MatrixXd>(vec_g.data(), d, d);
}

double GeometricMeanSingularValue(const MatrixXd& g) {
  const VectorXd sv = Eigen::JacobiSVD<MatrixXd>(g).singularValues();
  return std::exp(sv.array().max(1e-300).log().mean());
}

MatrixXd ClipSingularValues(const MatrixXd& g, double g_ref) {
  Eigen::JacobiSVD<MatrixXd> svd(g, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const VectorXd sv = svd.singularValues().cwiseMax(0.1 * g_ref).cwiseMin(10.0 * g_ref);
  return svd.matrixU() * sv.asDiagonal() * svd.matrixV().transpose();
}

bool GeneratorUsable(const MatrixXd& g, double g_ref) {
  return g.allFinite() && GeometricMeanSingularValue(g) > 1e-6 * g_ref;
}

GeneratorAdam::GeneratorAdam(const MatrixXd& g, double mu, double g_ref,
                             const quant::GlvqOptions& options)
    : o_(options),
      learn_mu_(options.mu_max > options.mu_min && mu >= kMuOff),
      g_ref_(g_ref),
      g_(g),
      mg_(MatrixXd::Zero(g.rows(), g.cols())),
      vg_(mg_),
      mu_(mu),
      theta_(learn_mu_ ? std::log(mu) : 0.0) {}

void GeneratorAdam::Step(int step, const MatrixXd& dg, double dmu) {
  const double b1 = 0.9, b2 = 0.999, lr_g = o_.refine_lr * g_ref_, lr_t = o_.refine_lr;
  const double c1 = 1 - std::pow(b1, step), c2 = 1 - std::pow(b2, step);
  mg_ = b1 * mg_ + (1 - b1) * dg;
  vg_ = b2 * vg_ + (1 - b2) * dg.cwiseAbs2();
  g_ -= (lr_g * (mg_ / c1).array() / ((vg_ / c2).array().sqrt() + 1e-30)).matrix();
  g_ = ClipSingularValues(g_, g_ref_);
  if (learn_mu_) {
    const double dt = dmu * mu_;  // d/dlog µ
    mt_ = b1 * mt_ + (1 - b1) * dt;
    vt_ = b2 * vt_ + (1 - b2) * dt * dt;
    theta_ -= lr_t * (mt_ / c1) / (std::sqrt(vt_ / c2) + 1e-30);
    theta_ = std::clamp(theta_, std::log(std::max(o_.mu_min, kMuOff)), std::log(o_.mu_max));
    mu_ = std::exp(theta_);
  }
}

void AppendGroupSideInfo(int bits, float scale, float mu, const Eigen::MatrixXd& g,
                         int iterations, QuantizedTensor* t, quant::GroupStats* stats) {
  t->bits.push_back(static_cast<uint8_t>(bits));
  t->scale.push_back(scale);
  t->mu.push_back(mu);
  for (Eigen::Index i = 0; i < g.rows(); ++i) {
    for (Eigen::Index j = 0; j < g.cols(); ++j) t->generators.push_back(static_cast<float>(g(i, j)));
  }
  stats->bits = bits;
  stats->mu = mu;
  stats->iterations = iterations;
}

}  // namespace glvq::cpu
