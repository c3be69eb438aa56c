// How PVQ spends a target rate (docs/algorithms.md §2): a D-vector gets
// B = ⌊bits · D⌋ bits, split between the gain code (g bits) and the pyramid
// index (⌈log2 N(D, K)⌉ bits) with the largest K that fits. Any K is
// allowed, so the rate (index bits + g) / D lands just below any target,
// fractional ones included. Pure counting on the pyramid (pvq.h): the
// configuration checks use it; choosing among the splits by measurement is
// the engine's (worker/cpu/pvq_rate.h).
#pragma once

#include <vector>

#include "absl/status/statusor.h"

namespace glvq::pvq {

inline constexpr int kMaxGainBits = 8;

struct Rate {
  int pulses = 0;      // K
  int gain_bits = 0;   // g
  int index_bits = 0;  // ⌈log2 N(D, K)⌉
  int record_bits() const { return index_bits + gain_bits; }
};

// The admissible splits of `bits` per weight for D = `dim`: one per gain
// bits value (only `gain_bits` if it is >= 0, else 0..kMaxGainBits), each
// with the largest K that fits. INVALID_ARGUMENT if there is none: the rate
// is below what P(D, 1) needs, or beyond the pyramid's bounds (pvq.h).
absl::StatusOr<std::vector<Rate>> RateCandidates(int dim, double bits, int gain_bits);

// Pulses K' for a row's short vector of k < D coordinates (when D does not
// divide the row): the largest K' with ⌈log2 N(k, K')⌉ + gain_bits ≤
// ⌊bits · k⌋, at least 1 (a short vector too small for its gain code costs
// the few bits of P(k, 1) more), and 1 for k = 1 (N(1, K) = 2 for every K).
int ShortVectorPulses(int k, double bits, int gain_bits);

}  // namespace glvq::pvq
