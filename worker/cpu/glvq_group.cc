#include "worker/cpu/glvq_group.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "worker/cpu/companding.h"
#include "worker/cpu/glvq_generator.h"
#include "worker/cpu/sphere_decoder.h"

namespace glvq::cpu {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

// Optimal uniform (midrise) step for N(0,1) with 2^b levels, b = 1..8,
// found by minimising the exact quantisation MSE (see docs/quality.md).
constexpr double kGaussianStep[8] = {1.5958, 0.9957, 0.5860, 0.3352,
                                     0.1881, 0.1041, 0.0569, 0.0308};

// Everything fixed for one group while G, µ and the codes are learned.
struct Context {
  const GroupProblem& p;
  int64_t rows, width, d, blocks, tail;
  double scale;     // s_g = max |W_g|
  MatrixXd x;       // W_g / s_g
  double code_min;  // smallest integer part of a code: -2^(b-1)
  double code_max;  // largest: 2^(b-1) - 1
};

struct Candidate {
  MatrixXd g;
  double mu = 0;
  MatrixXd z;  // half-integer lattice coordinates, rows × width
  double loss = std::numeric_limits<double>::infinity();
};

MatrixXd CompandAll(const MatrixXd& x, double mu) {
  return x.unaryExpr([mu](double v) { return Compand(v, mu); });
}

// Applies `fn(col0, k, gk)` to every d-block of a row (the last may be short).
template <typename Shape, typename Fn>
void ForEachBlock(const Shape& c, const MatrixXd& g, Fn fn) {
  for (int64_t j = 0; j < c.blocks; ++j) fn(j * c.d, c.d, g);
  if (c.tail > 0) fn(c.blocks * c.d, c.tail, MatrixXd(g.topLeftCorner(c.tail, c.tail)));
}

// Babai rounding with clamped midrise levels: z = clamp(⌊G⁻¹y⌋) + ½.
template <typename Shape>
MatrixXd Babai(const Shape& c, const MatrixXd& g, const MatrixXd& y) {
  MatrixXd z(c.rows, c.width);
  ForEachBlock(c, g, [&](int64_t c0, int64_t k, const MatrixXd& gk) {
    const MatrixXd u = y.middleCols(c0, k) * gk.inverse().transpose();
    z.middleCols(c0, k) = u.unaryExpr([&](double v) {
      if (!std::isfinite(v)) v = 0;  // a singular leading block; keep-best rejects it
      return std::clamp(std::floor(v), c.code_min, c.code_max) + 0.5;
    });
  });
  return z;
}

MatrixXd DecodeCompanded(const Context& c, const MatrixXd& g, const MatrixXd& z) {
  MatrixXd y(c.rows, c.width);
  ForEachBlock(c, g, [&](int64_t c0, int64_t k, const MatrixXd& gk) {
    y.middleCols(c0, k) = z.middleCols(c0, k) * gk.transpose();
  });
  return y;
}

struct Evaluation {
  double loss = 0;   // tr(Δ H Δᵀ) in units of the normalised weights x
  MatrixXd dg;       // ∂loss/∂G (when asked for)
  double dmu = 0;    // ∂loss/∂µ (when asked for)
};

// The true loss of (G, µ, Z) and optionally its gradient, sharing one
// exponential per weight (Eigen's vectorised exp: this is the hot loop).
Evaluation Evaluate(const Context& c, const MatrixXd& g, double mu, const MatrixXd& z,
                    bool gradient) {
  const MatrixXd yhat = DecodeCompanded(c, g, z);
  Evaluation e;
  MatrixXd delta;
  Eigen::ArrayXXd a, p, sign;
  const bool companded = mu >= kMuOff;
  const double l = companded ? std::log1p(mu) : 0.0;
  if (companded) {
    a = yhat.array().abs();
    p = (a * l).exp();
    sign = yhat.array().sign();
    delta = c.x.array() - sign * (p - 1.0) / mu;
  } else {
    delta = c.x - yhat;
  }
  const MatrixXd r = c.p.h_is_identity ? delta : MatrixXd(delta * *c.p.h);
  e.loss = r.cwiseProduct(delta).sum();
  if (!gradient) return e;
  MatrixXd gy = -2.0 * r;
  if (companded) {
    gy.array() *= l * p / mu;  // dF⁻¹/dy
    e.dmu = (-2.0 * r.array() * sign * (a * p * (mu / (1.0 + mu)) - (p - 1.0)) / (mu * mu)).sum();
  }
  e.dg = MatrixXd::Zero(c.d, c.d);
  ForEachBlock(c, g, [&](int64_t c0, int64_t k, const MatrixXd&) {
    e.dg.topLeftCorner(k, k).noalias() += gy.middleCols(c0, k).transpose() * z.middleCols(c0, k);
  });
  return e;
}

double Loss(const Context& c, const MatrixXd& g, double mu, const MatrixXd& z) {
  return Evaluate(c, g, mu, z, /*gradient=*/false).loss;
}

// The block shape Babai needs, for BabaiCoordinates.
struct BlockShape {
  int64_t rows, width, d, blocks, tail;
  double code_min, code_max;
};

double SampleKurtosis(const MatrixXd& x) {
  const double mean = x.mean();
  const double m2 = (x.array() - mean).square().mean();
  if (m2 <= 0) return 3.0;
  return (x.array() - mean).square().square().mean() / (m2 * m2);
}

double InitialMu(const Context& c) {
  if (c.p.options.mu_max < kMuOff) return 0.0;
  return InitialMuFromKurtosis(SampleKurtosis(c.x), c.p.options);
}

// G₀ = α_b · chol(E[y yᵀ]) over the group's full d-vectors.
MatrixXd InitialGenerator(const Context& c, const MatrixXd& y) {
  MatrixXd cov = MatrixXd::Zero(c.d, c.d);
  for (int64_t j = 0; j < c.blocks; ++j) {
    const auto blk = y.middleCols(j * c.d, c.d);
    cov.noalias() += blk.transpose() * blk;
  }
  const double n = static_cast<double>(c.blocks * c.rows);
  const double m2 = y.squaredNorm() / static_cast<double>(y.size());
  return InitialGeneratorFromCovariance(std::move(cov), n, m2, c.p.bits);
}

// Closed-form least squares for G with the codes fixed (companded domain):
// plain  G = (Y Zᵀ + λG₀)(Z Zᵀ + λI)⁻¹, or Hessian-weighted
// [Σ_kl A_lkᵀ ⊗ H_kl] vec(G) = vec(Σ_kl H_kl B_lk).
MatrixXd UpdateGenerator(const Context& c, const MatrixXd& y, const MatrixXd& z,
                         const MatrixXd& g0) {
  const int64_t d = c.d, nb = c.blocks;
  const double lam = GeneratorRegulariser(c.p.options, nb * c.rows);
  if (nb == 0) return g0;
  if (c.p.h_is_identity) {
    MatrixXd a = lam * MatrixXd::Identity(d, d), b = lam * g0;
    for (int64_t j = 0; j < nb; ++j) {
      a.noalias() += z.middleCols(j * d, d).transpose() * z.middleCols(j * d, d);
      b.noalias() += y.middleCols(j * d, d).transpose() * z.middleCols(j * d, d);
    }
    return SolvePlainGenerator(a, b);
  }
  const int64_t nf = nb * d;
  const MatrixXd gzz = z.leftCols(nf).transpose() * z.leftCols(nf);
  const MatrixXd gyz = y.leftCols(nf).transpose() * z.leftCols(nf);
  return SolveHessianGenerator(gzz, gyz, *c.p.h, g0, lam, d, nb);
}

void KeepIfBetter(Candidate cand, Candidate* best) {
  if (cand.loss < best->loss) *best = std::move(cand);
}

// Adam on (G, log µ) with the codes of `best` fixed; keeps the best seen.
// Each step evaluates the current point once (loss and gradient together).
void Refine(const Context& c, double g_ref, Candidate* best) {
  const engine::GlvqOptions& o = c.p.options;
  GeneratorAdam adam(best->g, best->mu, g_ref, o);
  for (int step = 1; step <= o.refine_steps; ++step) {
    const Evaluation e = Evaluate(c, adam.g(), adam.mu(), best->z, /*gradient=*/true);
    if (step > 1) KeepIfBetter({adam.g(), adam.mu(), best->z, e.loss}, best);
    adam.Step(step, e.dg, e.dmu);
  }
  if (o.refine_steps > 0) {
    KeepIfBetter({adam.g(), adam.mu(), best->z, Loss(c, adam.g(), adam.mu(), best->z)}, best);
  }
}

// Final codes by exact closest-point search in the companded domain.
MatrixXd ExactCodes(const Context& c, const Candidate& cand) {
  const MatrixXd y = CompandAll(c.x, cand.mu);
  MatrixXd z = cand.z;
  ForEachBlock(c, cand.g, [&](int64_t c0, int64_t k, const MatrixXd& gk) {
    const BoxedSphereDecoder decoder(gk, c.p.bits);
    VectorXd zi(k);
    for (int64_t r = 0; r < c.rows; ++r) {
      zi = z.row(r).segment(c0, k).transpose();
      decoder.Solve(y.row(r).segment(c0, k).transpose(), &zi);
      z.row(r).segment(c0, k) = zi.transpose();
    }
  });
  return z;
}

// Rounds the stored parameters to F32, as the packed format keeps them.
Candidate ToStoredPrecision(const Context& c, Candidate cand) {
  cand.g = cand.g.cast<float>().cast<double>();
  cand.mu = static_cast<float>(cand.mu);
  cand.loss = Loss(c, cand.g, cand.mu, cand.z);
  return cand;
}

Context MakeContext(const GroupProblem& p) {
  const MatrixXd& w = *p.w;
  const double max_abs = w.cwiseAbs().maxCoeff();
  // An all-zero group still needs a positive scale; the smallest normal
  // float makes its decoded values vanish.
  const auto scale = static_cast<float>(max_abs > 0 ? max_abs : std::numeric_limits<float>::min());
  const double half = std::ldexp(1.0, p.bits - 1);
  return {p, w.rows(), w.cols(), p.dim, w.cols() / p.dim, w.cols() % p.dim, scale,
          w / double(scale), -half, half - 1};
}

}  // namespace

double UniformStepForGaussian(int bits) { return kGaussianStep[bits - 1]; }

MatrixXd BabaiCoordinates(const MatrixXd& y, const MatrixXd& g, int dim, int bits) {
  const double half = std::ldexp(1.0, bits - 1);
  const BlockShape shape{y.rows(), y.cols(), dim, y.cols() / dim, y.cols() % dim, -half, half - 1};
  return Babai(shape, g, y);
}

GroupLossGradient EvaluateGroupLoss(const GroupProblem& p, const MatrixXd& g, double mu,
                                    const MatrixXd& z) {
  Evaluation e = Evaluate(MakeContext(p), g, mu, z, /*gradient=*/true);
  return {e.loss, std::move(e.dg), e.dmu};
}

GroupSolution SolveGlvqGroup(const GroupProblem& p) {
  const Context c = MakeContext(p);
  const double half = -c.code_min;
  const auto scale = static_cast<float>(c.scale);

  const double mu0 = static_cast<float>(InitialMu(c));
  MatrixXd y = CompandAll(c.x, mu0);
  const MatrixXd g0 = InitialGenerator(c, y);
  const double g_ref = GeometricMeanSingularValue(g0);

  Candidate best;
  MatrixXd g = g0;
  int iterations = 0;
  for (int it = 0; it < p.options.max_iters; ++it) {
    ++iterations;
    const MatrixXd z = Babai(c, g, y);
    const double before = best.loss;
    KeepIfBetter({g, mu0, z, Loss(c, g, mu0, z)}, &best);
    const MatrixXd g_next = UpdateGenerator(c, y, z, g0);
    if (!GeneratorUsable(g_next, g_ref)) break;
    g = ClipSingularValues(g_next, g_ref);
    KeepIfBetter({g, mu0, z, Loss(c, g, mu0, z)}, &best);
    if (std::isfinite(before) && before - best.loss <= p.options.tolerance * before) break;
  }
  Refine(c, g_ref, &best);
  // The refinement moved G and µ under fixed codes: re-round once with them.
  {
    MatrixXd z = Babai(c, best.g, CompandAll(c.x, best.mu));
    const double loss = Loss(c, best.g, best.mu, z);
    KeepIfBetter({best.g, best.mu, std::move(z), loss}, &best);
  }
  best = ToStoredPrecision(c, std::move(best));
  if (p.options.exact_search) {
    Candidate exact = best;
    exact.z = ExactCodes(c, best);
    exact.loss = Loss(c, exact.g, exact.mu, exact.z);
    KeepIfBetter(std::move(exact), &best);
  }

  GroupSolution out;
  out.scale = scale;
  out.mu = static_cast<float>(best.mu);
  out.g = best.g;
  out.loss = best.loss * double(scale) * double(scale);
  out.iterations = iterations;
  out.codes.resize(static_cast<size_t>(c.rows * c.width));
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t col = 0; col < c.width; ++col) {
      out.codes[r * c.width + col] = static_cast<uint8_t>(best.z(r, col) - 0.5 + half);
    }
  }
  return out;
}

}  // namespace glvq::cpu
