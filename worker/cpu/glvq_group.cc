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
  VectorXd root_weight;  // √ρ_r per row; empty when every row weighs 1
  double code_min;  // smallest integer part of a code: -2^(b-1)
  double code_max;  // largest: 2^(b-1) - 1
};

struct Candidate {
  MatrixXd g;
  double mu = 0;
  MatrixXd z;  // half-integer lattice coordinates, rows × width
  double loss = std::numeric_limits<double>::infinity();
};

// diag(√ρ) m: rows scaled so that plain sums of products are ρ-weighted.
MatrixXd Weighted(const Context& c, const MatrixXd& m) {
  if (c.root_weight.size() == 0) return m;
  return c.root_weight.asDiagonal() * m;
}

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
  delta = Weighted(c, delta);
  const MatrixXd r = c.p.h_is_identity ? delta : MatrixXd(delta * *c.p.h);
  e.loss = r.cwiseProduct(delta).sum();
  if (!gradient) return e;
  // ∂loss/∂ŵ = −2 diag(√ρ) r (r holds the weighted rows once already).
  const MatrixXd rw = Weighted(c, r);
  MatrixXd gy = -2.0 * rw;
  if (companded) {
    gy.array() *= l * p / mu;  // dF⁻¹/dy
    e.dmu = (-2.0 * rw.array() * sign * (a * p * (mu / (1.0 + mu)) - (p - 1.0)) / (mu * mu)).sum();
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
MatrixXd UpdateGenerator(const Context& c, const MatrixXd& y_plain, const MatrixXd& z_plain,
                         const MatrixXd& g0) {
  const int64_t d = c.d, nb = c.blocks;
  // Row weights enter the normal equations as diag(√ρ) on both factors.
  const MatrixXd y = Weighted(c, y_plain), z = Weighted(c, z_plain);
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
  const quant::GlvqOptions& o = c.p.options;
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
  return {p,      w.rows(),         w.cols(),
          p.dim,  w.cols() / p.dim, w.cols() % p.dim,
          scale,  w / double(scale),
          p.row_weight ? VectorXd(p.row_weight->cwiseSqrt()) : VectorXd(),
          -half,  half - 1};
}

// Where the learning starts for one µ: the companded group and G₀.
struct Start {
  double mu = 0;
  MatrixXd y;   // F_µ(x)
  MatrixXd g0;  // α_b · chol(cov(y))
  double g_ref = 1;
};

Start MakeStart(const Context& c, double mu) {
  Start s;
  s.mu = mu;
  s.y = CompandAll(c.x, mu);
  s.g0 = InitialGenerator(c, s.y);
  s.g_ref = GeometricMeanSingularValue(s.g0);
  return s;
}

// Alternates Babai rounding and the closed-form G update from G₀ with µ
// fixed, for at most `iters` alternations or until the relative gain drops
// below the tolerance; keeps the best (G, µ, Z) in `best`. Returns the
// alternations run.
int Alternate(const Context& c, const Start& s, int iters, Candidate* best) {
  MatrixXd g = s.g0;
  int run = 0;
  for (int it = 0; it < iters; ++it) {
    ++run;
    const MatrixXd z = Babai(c, g, s.y);
    const double before = best->loss;
    KeepIfBetter({g, s.mu, z, Loss(c, g, s.mu, z)}, best);
    const MatrixXd g_next = UpdateGenerator(c, s.y, z, s.g0);
    if (!GeneratorUsable(g_next, s.g_ref)) break;
    g = ClipSingularValues(g_next, s.g_ref);
    KeepIfBetter({g, s.mu, z, Loss(c, g, s.mu, z)}, best);
    if (std::isfinite(before) && before - best->loss <= c.p.options.tolerance * before) break;
  }
  return run;
}

// Alternations that score one µ candidate of the grid: enough to move G
// off G₀ (most of the gain comes in the first two), few enough that a
// 6-point grid costs about as much as the full learning.
constexpr int kMuGridAlternations = 2;

// The µ the learning starts from: the paper's kurtosis rule (mu_grid 0),
// or the grid candidate mu_min + (mu_max − mu_min)·t², t = i/(n−1), with the
// least true loss after kMuGridAlternations. Quadratic spacing puts most
// candidates at small µ, where the best values for LLM weights lie.
double StartMu(const Context& c) {
  const quant::GlvqOptions& o = c.p.options;
  if (o.mu_grid == 0 || o.mu_max < kMuOff) return static_cast<float>(InitialMu(c));
  const int n = o.mu_grid;
  double best_mu = o.mu_min, best_loss = std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) {
    const double t = n == 1 ? 0.0 : double(i) / double(n - 1);
    const double mu = static_cast<float>(o.mu_min + (o.mu_max - o.mu_min) * t * t);
    Candidate cand;
    Alternate(c, MakeStart(c, mu), kMuGridAlternations, &cand);
    if (cand.loss < best_loss) {
      best_loss = cand.loss;
      best_mu = mu;
    }
  }
  return best_mu;
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

  const Start start = MakeStart(c, StartMu(c));
  const double g_ref = start.g_ref;
  Candidate best;
  const int iterations = Alternate(c, start, p.options.max_iters, &best);
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
