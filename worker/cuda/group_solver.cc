#include "worker/cuda/group_solver.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/base/status_macros.h"
#include "worker/cpu/companding.h"
#include "worker/cpu/glvq_generator.h"
#include "common/base/parallel.h"

namespace glvq::cuda {
namespace {

using Eigen::MatrixXd;
using Operand = DeviceWorkspace::Operand;
using Codes = DeviceWorkspace::Codes;

// What SolveGlvqGroup keeps per group, for all groups side by side.
struct GroupState {
  int64_t width = 0, blocks = 0;
  float scale = 1.0f;
  double mu0 = 0, g_ref = 1;
  MatrixXd g0, g, best_g;
  double best_mu = 0;
  double best_loss = std::numeric_limits<double>::infinity();
  bool active = true;
  int iterations = 0;
};

class SpanSolver {
 public:
  SpanSolver(DeviceWorkspace& ws, const SpanProblem& p)
      : ws_(ws), p_(p), s_(ws.shape().widths.size()) {
    for (size_t g = 0; g < s_.size(); ++g) {
      s_[g].width = ws.shape().widths[g];
      s_[g].blocks = s_[g].width / ws.shape().dim;
    }
  }

  absl::StatusOr<std::vector<SpanGroupResult>> Run() {
    RETURN_IF_ERROR(Init());
    RETURN_IF_ERROR(Alternate());
    RETURN_IF_ERROR(Refine());
    RETURN_IF_ERROR(Reround());
    std::vector<SpanGroupResult> out(s_.size());
    for (size_t g = 0; g < s_.size(); ++g) {  // ToStoredPrecision
      out[g] = {s_[g].scale, static_cast<float>(s_[g].best_mu),
                s_[g].best_g.cast<float>().cast<double>(), s_[g].iterations};
    }
    return out;
  }

 private:
  int64_t d() const { return ws_.shape().dim; }
  int64_t rows() const { return ws_.shape().rows; }
  template <typename Fn>
  void ForGroups(Fn fn) {
    ParallelFor(static_cast<int64_t>(s_.size()), p_.threads, fn);
  }
  std::vector<uint8_t> Mask(bool all) const {
    std::vector<uint8_t> m(s_.size());
    for (size_t g = 0; g < s_.size(); ++g) m[g] = (all || s_[g].active) ? 1 : 0;
    return m;
  }
  std::vector<double> Mu0() const {
    std::vector<double> mu(s_.size());
    for (size_t g = 0; g < s_.size(); ++g) mu[g] = s_[g].mu0;
    return mu;
  }
  // KeepIfBetter for candidate (g, µ) with the loss `loss`.
  static bool Keep(GroupState& s, const MatrixXd& g, double mu, double loss) {
    if (!(loss < s.best_loss)) return false;
    s.best_g = g;
    s.best_mu = mu;
    s.best_loss = loss;
    return true;
  }

  absl::Status Init();
  absl::Status Alternate();
  absl::Status Refine();
  absl::Status Reround();
  MatrixXd UpdateGenerator(size_t g, const MatrixXd& zz, const MatrixXd& yz) const;

  DeviceWorkspace& ws_;
  const SpanProblem& p_;
  std::vector<GroupState> s_;
};

// Scale, µ₀ (from the kurtosis), y = F_µ₀(x), G₀ and its reference size.
absl::Status SpanSolver::Init() {
  RETURN_IF_ERROR(ws_.SetBits(p_.bits));
  ASSIGN_OR_RETURN(const std::vector<double> max_abs, ws_.MaxAbs());
  std::vector<float> scales(s_.size());
  for (size_t g = 0; g < s_.size(); ++g) {
    scales[g] = s_[g].scale =
        static_cast<float>(max_abs[g] > 0 ? max_abs[g] : std::numeric_limits<float>::min());
  }
  RETURN_IF_ERROR(ws_.SetScales(scales));
  if (p_.options.mu_max >= cpu::kMuOff) {
    ASSIGN_OR_RETURN(const std::vector<double> kurtosis, ws_.Kurtosis());
    for (size_t g = 0; g < s_.size(); ++g) {
      s_[g].mu0 = static_cast<float>(cpu::InitialMuFromKurtosis(kurtosis[g], p_.options));
    }
  }
  RETURN_IF_ERROR(ws_.SetModel(std::vector<MatrixXd>(s_.size()), Mu0(), Mask(true)));
  RETURN_IF_ERROR(ws_.Compand());
  ASSIGN_OR_RETURN(const std::vector<MatrixXd> yy, ws_.Grams(Operand::kY, Operand::kY));
  ASSIGN_OR_RETURN(const std::vector<double> m2, ws_.MeanSquareY());
  ForGroups([&](int64_t g) {
    GroupState& s = s_[g];
    MatrixXd cov = MatrixXd::Zero(d(), d());
    for (int64_t j = 0; j < s.blocks; ++j) cov.noalias() += yy[g].block(j * d(), j * d(), d(), d());
    s.g0 = cpu::InitialGeneratorFromCovariance(
        std::move(cov), static_cast<double>(s.blocks * rows()), m2[g], p_.bits[g]);
    s.g_ref = cpu::GeometricMeanSingularValue(s.g0);
    s.g = s.g0;
  });
  return absl::OkStatus();
}

// The CPU's UpdateGenerator from the code Gram products.
MatrixXd SpanSolver::UpdateGenerator(size_t g, const MatrixXd& zz, const MatrixXd& yz) const {
  const GroupState& s = s_[g];
  const double lam = cpu::GeneratorRegulariser(p_.options, s.blocks * rows());
  if (s.blocks == 0) return s.g0;
  if (p_.hessian.empty()) {
    MatrixXd a = lam * MatrixXd::Identity(d(), d()), b = lam * s.g0;
    for (int64_t j = 0; j < s.blocks; ++j) {
      a.noalias() += zz.block(j * d(), j * d(), d(), d());
      b.noalias() += yz.block(j * d(), j * d(), d(), d());
    }
    return cpu::SolvePlainGenerator(a, b);
  }
  return cpu::SolveHessianGenerator(zz, yz, p_.hessian[g], s.g0, lam, d(), s.blocks);
}

// Alternations: Babai codes, closed-form G, keep-best, until each group's
// relative gain drops below the tolerance (or its G collapses).
absl::Status SpanSolver::Alternate() {
  const size_t n = s_.size();
  for (int it = 0; it < p_.options.max_iters; ++it) {
    const std::vector<uint8_t> mask = Mask(false);
    if (std::count(mask.begin(), mask.end(), 1) == 0) break;
    std::vector<MatrixXd> gs(n);
    for (size_t g = 0; g < n; ++g) {
      if (mask[g] == 0) continue;
      ++s_[g].iterations;
      gs[g] = s_[g].g;
    }
    RETURN_IF_ERROR(ws_.SetModel(gs, Mu0(), mask));
    RETURN_IF_ERROR(ws_.Babai());
    ASSIGN_OR_RETURN(const GroupEvaluation e1, ws_.Evaluate(Codes::kCurrent, false));
    std::vector<uint8_t> improved(n, 0), mask2(n, 0);
    std::vector<double> before(n);
    for (size_t g = 0; g < n; ++g) {
      if (mask[g] == 0) continue;
      before[g] = s_[g].best_loss;
      improved[g] = Keep(s_[g], s_[g].g, s_[g].mu0, e1.loss[g]);
    }
    ASSIGN_OR_RETURN(const std::vector<MatrixXd> zz, ws_.Grams(Operand::kZ, Operand::kZ));
    ASSIGN_OR_RETURN(const std::vector<MatrixXd> yz, ws_.Grams(Operand::kY, Operand::kZ));
    ForGroups([&](int64_t g) {
      if (mask[g] == 0) return;
      const MatrixXd next = UpdateGenerator(static_cast<size_t>(g), zz[g], yz[g]);
      if (!cpu::GeneratorUsable(next, s_[g].g_ref)) {
        s_[g].active = false;
        return;
      }
      s_[g].g = gs[g] = cpu::ClipSingularValues(next, s_[g].g_ref);
      mask2[g] = 1;
    });
    RETURN_IF_ERROR(ws_.SetModel(gs, Mu0(), mask2));
    ASSIGN_OR_RETURN(const GroupEvaluation e2, ws_.Evaluate(Codes::kCurrent, false));
    for (size_t g = 0; g < n; ++g) {
      if (mask2[g] == 0) continue;
      GroupState& s = s_[g];
      if (Keep(s, s.g, s.mu0, e2.loss[g])) improved[g] = 1;
      if (std::isfinite(before[g]) && before[g] - s.best_loss <= p_.options.tolerance * before[g]) {
        s.active = false;
      }
    }
    RETURN_IF_ERROR(ws_.KeepImproved(improved));
  }
  return absl::OkStatus();
}

// Adam on (G, log µ) with each group's best codes fixed.
absl::Status SpanSolver::Refine() {
  const int steps = p_.options.refine_steps;
  std::vector<cpu::GeneratorAdam> adam;
  for (const GroupState& s : s_) {
    if (s.best_g.size() == 0) return absl::InternalError("a GLVQ group has no finite loss");
    adam.emplace_back(s.best_g, s.best_mu, s.g_ref, p_.options);
  }
  std::vector<MatrixXd> g(s_.size());
  std::vector<double> mu(s_.size());
  auto current = [&] {
    for (size_t i = 0; i < s_.size(); ++i) {
      g[i] = adam[i].g();
      mu[i] = adam[i].mu();
    }
    return ws_.SetModel(g, mu, Mask(true));
  };
  for (int step = 1; step <= steps; ++step) {
    RETURN_IF_ERROR(current());
    ASSIGN_OR_RETURN(const GroupEvaluation e, ws_.Evaluate(Codes::kBest, true));
    ForGroups([&](int64_t i) {
      if (step > 1) Keep(s_[i], g[i], mu[i], e.loss[i]);
      adam[i].Step(step, e.dg[i], e.dmu[i]);
    });
  }
  if (steps == 0) return absl::OkStatus();
  RETURN_IF_ERROR(current());
  ASSIGN_OR_RETURN(const GroupEvaluation e, ws_.Evaluate(Codes::kBest, false));
  for (size_t i = 0; i < s_.size(); ++i) Keep(s_[i], g[i], mu[i], e.loss[i]);
  return absl::OkStatus();
}

// The refinement moved G and µ under fixed codes: re-round once with them.
absl::Status SpanSolver::Reround() {
  const size_t n = s_.size();
  std::vector<MatrixXd> g(n);
  std::vector<double> mu(n);
  for (size_t i = 0; i < n; ++i) {
    g[i] = s_[i].best_g;
    mu[i] = s_[i].best_mu;
  }
  RETURN_IF_ERROR(ws_.SetModel(g, mu, Mask(true)));
  RETURN_IF_ERROR(ws_.Compand());
  RETURN_IF_ERROR(ws_.Babai());
  ASSIGN_OR_RETURN(const GroupEvaluation e, ws_.Evaluate(Codes::kCurrent, false));
  std::vector<uint8_t> improved(n, 0);
  for (size_t i = 0; i < n; ++i) improved[i] = Keep(s_[i], g[i], mu[i], e.loss[i]);
  return ws_.KeepImproved(improved);
}

}  // namespace

absl::StatusOr<std::vector<SpanGroupResult>> SolveSpan(DeviceWorkspace& ws,
                                                       const SpanProblem& problem) {
  return SpanSolver(ws, problem).Run();
}

}  // namespace glvq::cuda
