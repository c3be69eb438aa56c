#include "worker/cpu/pvq_rate.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <span>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/base/random.h"
#include "common/packed/pvq.h"
#include "worker/cpu/pvq_gain.h"
#include "worker/cpu/pvq_projection.h"

namespace glvq::cpu {
namespace {

constexpr int kMaxGainBits = 8;
// The Gaussian trial: 16 rows of max(8, ⌈1024 / D⌉) D-vectors from a fixed seed.
constexpr int64_t kTrialRows = 16;
constexpr uint64_t kTrialSeed = 0x5056512d7472ull;  // "PVQ-tr"

// ⌊bits · k⌋; the epsilon keeps products like 1.7 · 10 from rounding down
// to 16.
int VectorBudget(double bits, int k) { return static_cast<int>(std::floor(bits * k + 1e-9)); }

// Per-weight MSE of `rate` with `design` gain levels on the trial: i.i.d.
// N(0, 1) rows of n weights (a multiple of D), each normalised by its norm
// and coded as n / D vectors exactly as the quantizer does.
double TrialMse(int dim, const PvqRate& rate, engine::PvqGainLevels design, int64_t n) {
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

absl::StatusOr<std::vector<PvqRate>> PvqRateCandidates(int dim, double bits, int gain_bits) {
  const int budget = VectorBudget(bits, dim);
  const int first = gain_bits >= 0 ? gain_bits : 0;
  const int last = gain_bits >= 0 ? gain_bits : kMaxGainBits;
  std::vector<PvqRate> candidates;
  bool capped = false;
  for (int g = first; g <= last && g < budget; ++g) {
    const pvq::PulseLimit limit = pvq::LargestPulses(dim, budget - g);
    capped = capped || limit.capped;
    if (limit.pulses > 0 && !limit.capped) {
      candidates.push_back({limit.pulses, g, limit.index_bits});
    }
  }
  if (!candidates.empty()) return candidates;
  if (capped) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "pvq rate beyond its bounds: %g bits per weight at D=%d give %d bits per vector, more "
        "than a pyramid index of at most %d bits and %d pulses can use; lower the bits or the "
        "dimension",
        bits, dim, budget, pvq::kMaxIndexBits, pvq::kMaxPulses));
  }
  const int smallest = std::bit_width(2u * static_cast<unsigned>(dim) - 1u);  // N(D, 1) = 2D
  return absl::InvalidArgumentError(absl::StrFormat(
      "pvq rate unreachable: %g bits per weight at D=%d give %d bits per vector, but the "
      "smallest pyramid P(%d, 1) needs %d index bits plus %d gain bits",
      bits, dim, budget, dim, smallest, first));
}

int ShortVectorPulses(int k, double bits, int gain_bits) {
  if (k == 1) return 1;
  return std::max(1, pvq::LargestPulses(k, VectorBudget(bits, k) - gain_bits).pulses);
}

absl::StatusOr<PvqRate> ChoosePvqRate(const engine::QuantizerConfig& config) {
  auto candidates = PvqRateCandidates(config.dim, config.bits, config.pvq.gain_bits);
  if (!candidates.ok()) return candidates.status();
  if (candidates->size() == 1) return candidates->front();
  // Quantile levels for the trial: within ~1 % of Lloyd–Max at every split
  // and far cheaper to compute for many levels.
  const int64_t n = config.dim * std::max(8, (1024 + config.dim - 1) / config.dim);
  PvqRate best;
  double best_mse = INFINITY;
  for (const PvqRate& c : *candidates) {
    const double mse = TrialMse(config.dim, c, engine::PvqGainLevels::kBetaQuantile, n);
    if (mse < best_mse) {
      best = c;
      best_mse = mse;
    }
  }
  return best;
}

}  // namespace glvq::cpu
