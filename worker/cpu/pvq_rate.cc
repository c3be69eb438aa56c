#include "worker/cpu/pvq_rate.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <span>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/base/random.h"
#include "common/packed/pvq.h"
#include "common/packed/pvq_rate.h"
#include "worker/cpu/pvq_gain.h"
#include "worker/cpu/pvq_projection.h"

namespace glvq::cpu {
namespace {

// The Gaussian trial: 16 rows of max(8, ⌈1024 / D⌉) D-vectors from a fixed seed.
constexpr int64_t kTrialRows = 16;
constexpr uint64_t kTrialSeed = 0x5056512d7472ull;  // "PVQ-tr"

// Per-weight MSE of `rate` with `design` gain levels on the trial: i.i.d.
// N(0, 1) rows of n weights (a multiple of D), each normalised by its norm
// and coded as n / D vectors exactly as the quantizer does.
double TrialMse(int dim, const pvq::Rate& rate, quant::PvqGainLevels design, int64_t n) {
  const std::vector<double> levels = PvqGainLevels(design, dim, n, 1 << rate.gain_bits);
  const std::vector<float> levels_f(levels.begin(), levels.end());
  Rng rng(kTrialSeed);
  std::vector<double> row(static_cast<size_t>(n)), w_hat(static_cast<size_t>(dim));
  std::vector<int32_t> y(static_cast<size_t>(dim));
  double err = 0;
  for (int64_t r = 0; r < kTrialRows; ++r) {
    double sum = 0;
    for (double& v : row) {
      v = rng.Normal();
      sum += v * v;
    }
    const auto norm = static_cast<float>(std::sqrt(sum));
    for (int64_t c0 = 0; c0 < n; c0 += dim) {
      const std::span<const double> w(&row[c0], static_cast<size_t>(dim));
      CodePvqVector(w, norm, rate.pulses, levels_f, y, w_hat);
      for (size_t i = 0; i < w.size(); ++i) err += (w[i] - w_hat[i]) * (w[i] - w_hat[i]);
    }
  }
  return err / static_cast<double>(kTrialRows * n);
}

}  // namespace

absl::StatusOr<pvq::Rate> ChoosePvqRate(const quant::QuantizerConfig& config) {
  auto candidates = pvq::RateCandidates(config.dim, config.bits, config.pvq.gain_bits);
  if (!candidates.ok()) return candidates.status();
  if (candidates->size() == 1) return candidates->front();
  // Quantile levels for the trial: within ~1 % of Lloyd–Max at every split
  // and far cheaper to compute for many levels.
  const int64_t n = config.dim * std::max(8, (1024 + config.dim - 1) / config.dim);
  pvq::Rate best;
  double best_mse = INFINITY;
  for (const pvq::Rate& c : *candidates) {
    const double mse = TrialMse(config.dim, c, quant::PvqGainLevels::kBetaQuantile, n);
    if (mse < best_mse) {
      best = c;
      best_mse = mse;
    }
  }
  return best;
}

}  // namespace glvq::cpu
