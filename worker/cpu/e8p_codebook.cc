#include "worker/cpu/e8p_codebook.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace glvq::cpu {

using e8p::kDim;

const E8pCodebook& E8pCodebook::Get() {
  static const E8pCodebook* const codebook = new E8pCodebook();
  return *codebook;
}

E8pCodebook::E8pCodebook() {
  const auto& table = e8p::AbsTable();
  for (int a = 0; a < e8p::kNumAbs; ++a) {
    for (int i = 0; i < kDim; ++i) abs_by_coord_[i][a] = 0.5 * table[a][i];
    abs_parity_[a] = e8p::AbsSumParity(a);
    wrong_if_even_[a] = abs_parity_[a];
    wrong_if_odd_[a] = 1 - abs_parity_[a];
  }
  for (int index = 0; index < (1 << 16); ++index) {
    codewords_[index] = e8p::Codeword(static_cast<uint16_t>(index));
  }
}

uint16_t E8pCodebook::NearestWithShift(const double* x, int k, bool plus,
                                       double* distance) const {
  const double shift = plus ? 0.25 : -0.25;
  double mag[kDim] = {};  // |y_i|, y = x − shift
  bool negative[kDim] = {};
  int negatives = 0;
  double y2 = 0;
  for (int i = 0; i < k; ++i) {
    const double y = x[i] - shift;
    mag[i] = std::fabs(y);
    negative[i] = y < 0;
    negatives += negative[i];
    y2 += y * y;
  }
  // d[a] = Σ_i (|y_i| − a_i)², plus, for a full vector whose best signs
  // have the wrong parity, the cheapest repair 4 · min_i |y_i| a_i. A
  // ragged vector repairs for free by flipping a coordinate the decoder
  // drops.
  const bool full = k == kDim;
  alignas(64) double d[e8p::kNumAbs], cheapest_flip[e8p::kNumAbs];
  for (int a = 0; a < e8p::kNumAbs; ++a) {
    d[a] = y2;
    cheapest_flip[a] = std::numeric_limits<double>::infinity();
  }
  for (int i = 0; i < k; ++i) {
    const double* v = abs_by_coord_[i].data();
    const double m = mag[i];
    for (int a = 0; a < e8p::kNumAbs; ++a) {
      d[a] += v[a] * (v[a] - 2 * m);
      cheapest_flip[a] = std::min(cheapest_flip[a], m * v[a]);
    }
  }
  if (full) {
    const double* wrong = (negatives & 1) != 0 ? wrong_if_odd_.data() : wrong_if_even_.data();
    for (int a = 0; a < e8p::kNumAbs; ++a) d[a] += wrong[a] * 4 * cheapest_flip[a];
  }
  const int best_a = static_cast<int>(std::min_element(d, d + e8p::kNumAbs) - d);
  if (((negatives + abs_parity_[best_a]) & 1) != 0) {
    int flip = kDim - 1;
    if (full) {
      for (int i = 0; i < kDim; ++i) {
        if (mag[i] * abs_by_coord_[i][best_a] < mag[flip] * abs_by_coord_[flip][best_a]) flip = i;
      }
    }
    negative[flip] = !negative[flip];
  }
  // Coordinate 0's sign is implied by the parity, which now holds.
  uint32_t index = static_cast<uint32_t>(best_a) | (plus ? 1u << 15 : 0u);
  for (int j = 1; j < kDim; ++j) {
    if (negative[j]) index |= 1u << (7 + j);
  }
  *distance = d[best_a];
  return static_cast<uint16_t>(index);
}

uint16_t E8pCodebook::Nearest(const double* x, int k) const {
  double minus_distance = 0, plus_distance = 0;
  const uint16_t minus = NearestWithShift(x, k, /*plus=*/false, &minus_distance);
  const uint16_t plus = NearestWithShift(x, k, /*plus=*/true, &plus_distance);
  return plus_distance < minus_distance ? plus : minus;
}

uint16_t E8pCodebook::NearestBruteForce(const double* x, int k) const {
  double best = std::numeric_limits<double>::infinity();
  uint16_t best_index = 0;
  for (int index = 0; index < (1 << 16); ++index) {
    const std::array<double, kDim>& c = codewords_[index];
    double d = 0;
    for (int i = 0; i < k; ++i) d += (x[i] - c[i]) * (x[i] - c[i]);
    if (d < best) {
      best = d;
      best_index = static_cast<uint16_t>(index);
    }
  }
  return best_index;
}

}  // namespace glvq::cpu
