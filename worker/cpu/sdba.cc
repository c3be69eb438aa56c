#include "worker/cpu/sdba.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_format.h"

namespace glvq::cpu {
namespace {

using Eigen::MatrixXd;

// Hessian-weighted error of per-row absmax midrise RTN at `bits` on one group.
double RtnProxy(const MatrixXd& wg, const MatrixXd& hg, int bits) {
  const double levels = std::ldexp(1.0, bits);
  MatrixXd delta(wg.rows(), wg.cols());
  for (int64_t r = 0; r < wg.rows(); ++r) {
    const double m = wg.row(r).cwiseAbs().maxCoeff();
    const double step = m > 0 ? 2.0 * m / levels : 1.0;
    for (int64_t c = 0; c < wg.cols(); ++c) {
      const double q = std::clamp(std::floor(wg(r, c) / step), -levels / 2, levels / 2 - 1) + 0.5;
      delta(r, c) = wg(r, c) - q * step;
    }
  }
  return (delta * hg).cwiseProduct(delta).sum();
}

std::vector<int64_t> BySalienceDescending(std::span<const double> salience, int64_t count) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return salience[a] > salience[b]; });
  return order;
}

absl::StatusOr<std::vector<int>> IntegerAllocation(int64_t cols, int64_t gs, int n,
                                                   std::span<const double> salience,
                                                   const RtnProxyFn& proxies) {
  const int64_t groups = static_cast<int64_t>(salience.size());
  const int64_t full = cols / gs;
  std::vector<int> bits(static_cast<size_t>(groups), n);
  if (n - 1 < 1 || n + 1 > 8 || full < 2) return bits;
  // Per-group proxy at N−1, N, N+1.
  absl::StatusOr<RtnProxyTable> table = proxies(n, full);
  if (!table.ok()) return table.status();
  if (static_cast<int64_t>(table->size()) != full) {
    return absl::InternalError(absl::StrFormat("RTN proxies for %d groups, expected %d",
                                               table->size(), full));
  }
  const RtnProxyTable& err = *table;
  const std::vector<int64_t> order = BySalienceDescending(salience, full);
  double best = 0;
  for (int64_t g = 0; g < full; ++g) best += err[g][1];
  int64_t best_i = 0;
  double total = best;
  for (int64_t i = 1; i <= full / 2; ++i) {
    const int64_t top = order[i - 1], bottom = order[full - i];
    total += err[top][2] - err[top][1] + err[bottom][0] - err[bottom][1];
    if (total < best) {
      best = total;
      best_i = i;
    }
  }
  for (int64_t i = 0; i < best_i; ++i) {
    bits[order[i]] = n + 1;
    bits[order[full - 1 - i]] = n - 1;
  }
  return bits;
}

}  // namespace

std::vector<double> GroupSalienceFromEnergies(std::span<const double> col_energy,
                                              const engine::PreparedHessian& h, int64_t gs) {
  const auto cols = static_cast<int64_t>(col_energy.size());
  const int64_t groups = (cols + gs - 1) / gs;
  Eigen::VectorXd inv_u2 = Eigen::VectorXd::Ones(cols);
  if (!h.is_identity()) inv_u2 = h.InverseCholeskyUpper().diagonal().array().square().inverse();
  std::vector<double> s(static_cast<size_t>(groups), 0.0);
  for (int64_t j = 0; j < cols; ++j) s[j / gs] += col_energy[j] * inv_u2[j];
  return s;
}

std::vector<double> GroupSalience(const MatrixXd& w, const engine::PreparedHessian& h,
                                  int64_t gs) {
  const Eigen::VectorXd col_energy = w.colwise().squaredNorm().transpose();
  return GroupSalienceFromEnergies(std::span<const double>(col_energy.data(), col_energy.size()),
                                   h, gs);
}

absl::StatusOr<std::vector<int>> AllocateBits(const MatrixXd& w, const engine::PreparedHessian& h,
                                              int64_t gs, double target) {
  const std::vector<double> salience = GroupSalience(w, h, gs);
  return AllocateBitsWith(salience, w.cols(), gs, target,
                          [&](int n, int64_t full) -> absl::StatusOr<RtnProxyTable> {
                            RtnProxyTable err(static_cast<size_t>(full));
                            for (int64_t g = 0; g < full; ++g) {
                              const MatrixXd wg = w.middleCols(g * gs, gs);
                              const MatrixXd hg = h.Block(g * gs, gs);
                              for (int k = 0; k < 3; ++k) err[g][k] = RtnProxy(wg, hg, n - 1 + k);
                            }
                            return err;
                          });
}

absl::StatusOr<std::vector<int>> AllocateBitsWith(std::span<const double> salience, int64_t cols,
                                                  int64_t gs, double target,
                                                  const RtnProxyFn& proxies) {
  const int n = static_cast<int>(std::floor(target));
  const double frac = target - n;
  if (frac == 0) return IntegerAllocation(cols, gs, n, salience, proxies);
  if (n + 1 > 8) return absl::InvalidArgumentError("bits above 8 are not supported");
  // Columns that must carry n+1 bits: a·gs + c·last == frac·cols exactly.
  const int64_t full = cols / gs, last = cols % gs;
  const double need = frac * static_cast<double>(cols);
  const auto need_cols = static_cast<int64_t>(std::llround(need));
  int64_t a = -1, c = 0;
  if (std::abs(need - static_cast<double>(need_cols)) < 1e-9) {
    for (int64_t cc = 0; cc <= (last > 0 ? 1 : 0) && a < 0; ++cc) {
      const int64_t rest = need_cols - cc * last;
      if (rest >= 0 && rest % gs == 0 && rest / gs <= full) {
        a = rest / gs;
        c = cc;
      }
    }
  }
  if (a < 0) {
    const double step = static_cast<double>(gs) / static_cast<double>(cols);
    const double lo = n + std::floor(frac / step) * step, hi = lo + step;
    return absl::InvalidArgumentError(absl::StrFormat(
        "%g bits per weight cannot be realised exactly with %d columns in groups of %d; "
        "nearest achievable: %.6g or %.6g",
        target, cols, gs, lo, hi));
  }
  std::vector<int> bits(salience.size(), n);
  const std::vector<int64_t> order = BySalienceDescending(salience, full);
  for (int64_t i = 0; i < a; ++i) bits[order[i]] = n + 1;
  if (c == 1) bits.back() = n + 1;
  return bits;
}

absl::StatusOr<std::vector<int>> GroupBits(const std::string& name, const Eigen::MatrixXd& w,
                                           const engine::PreparedHessian& h, int64_t num_groups,
                                           const quant::QuantizerConfig& config) {
  if (!config.sdba) {
    return std::vector<int>(static_cast<size_t>(num_groups), static_cast<int>(config.bits));
  }
  auto allocated = AllocateBits(w, h, config.group_size, config.bits);
  if (!allocated.ok()) {
    return absl::InvalidArgumentError(name + ": " + std::string(allocated.status().message()));
  }
  return allocated;
}

}  // namespace glvq::cpu
