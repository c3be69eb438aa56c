#include "common/packed/pvq_rate.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "absl/strings/str_format.h"
#include "common/packed/pvq.h"

namespace glvq::pvq {
namespace {

// ⌊bits · k⌋; the epsilon keeps products like 1.7 · 10 from rounding down
// to 16.
int VectorBudget(double bits, int k) { return static_cast<int>(std::floor(bits * k + 1e-9)); }

}  // namespace

absl::StatusOr<std::vector<Rate>> RateCandidates(int dim, double bits, int gain_bits) {
  const int budget = VectorBudget(bits, dim);
  const int first = gain_bits >= 0 ? gain_bits : 0;
  const int last = gain_bits >= 0 ? gain_bits : kMaxGainBits;
  std::vector<Rate> candidates;
  bool capped = false;
  for (int g = first; g <= last && g < budget; ++g) {
    const PulseLimit limit = LargestPulses(dim, budget - g);
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
        bits, dim, budget, kMaxIndexBits, kMaxPulses));
  }
  const int smallest = std::bit_width(2u * static_cast<unsigned>(dim) - 1u);  // N(D, 1) = 2D
  return absl::InvalidArgumentError(absl::StrFormat(
      "pvq rate unreachable: %g bits per weight at D=%d give %d bits per vector, but the "
      "smallest pyramid P(%d, 1) needs %d index bits plus %d gain bits",
      bits, dim, budget, dim, smallest, first));
}

int ShortVectorPulses(int k, double bits, int gain_bits) {
  if (k == 1) return 1;
  return std::max(1, LargestPulses(k, VectorBudget(bits, k) - gain_bits).pulses);
}

}  // namespace glvq::pvq
