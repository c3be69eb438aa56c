// The E8P nearest-codeword search (e8p_codebook.h) as a device-safe
// function over plain tables, the CUDA engine's copy of
// E8pCodebook::Nearest: the same candidates in the same order, so it
// returns the same index (tested against it on the CPU, e8p_test).
// Device-safe C++17 (common/base/host_device.h).
#pragma once

#include <math.h>
#include <stdint.h>

#include "common/base/host_device.h"

namespace glvq::cpu {

inline constexpr int kE8pDim = 8;
inline constexpr int kE8pNumAbs = 256;

// Views of E8pCodebook's tables (host or device memory, owned elsewhere).
struct E8pTables {
  const double* abs_by_coord = nullptr;  // [kE8pDim][kE8pNumAbs]: a_i, not doubled
  const int* abs_parity = nullptr;       // [kE8pNumAbs]: Σ a_i mod 2 (doubled values)
};

// E8pCodebook::NearestWithShift, one abs vector at a time.
GLVQ_HOST_DEVICE inline uint16_t E8pNearestWithShift(const E8pTables& t, const double* x, int k,
                                                     bool plus, double* distance) {
  const double shift = plus ? 0.25 : -0.25;
  double mag[kE8pDim] = {};
  bool negative[kE8pDim] = {};
  int negatives = 0;
  double y2 = 0;
  for (int i = 0; i < k; ++i) {
    const double y = x[i] - shift;
    mag[i] = fabs(y);
    negative[i] = y < 0;
    negatives += negative[i];
    y2 += y * y;
  }
  const bool full = k == kE8pDim;
  int best_a = 0;
  double best = 0;
  for (int a = 0; a < kE8pNumAbs; ++a) {
    double d = y2, cheapest_flip = HUGE_VAL;
    for (int i = 0; i < k; ++i) {
      const double v = t.abs_by_coord[i * kE8pNumAbs + a], flip = mag[i] * v;
      d += v * (v - 2 * mag[i]);
      cheapest_flip = flip < cheapest_flip ? flip : cheapest_flip;
    }
    if (full) {
      const double wrong = (negatives & 1) != 0 ? 1 - t.abs_parity[a] : t.abs_parity[a];
      d += wrong * 4 * cheapest_flip;
    }
    if (a == 0 || d < best) {
      best = d;
      best_a = a;
    }
  }
  if (((negatives + t.abs_parity[best_a]) & 1) != 0) {
    int flip = kE8pDim - 1;
    if (full) {
      for (int i = 0; i < kE8pDim; ++i) {
        if (mag[i] * t.abs_by_coord[i * kE8pNumAbs + best_a] <
            mag[flip] * t.abs_by_coord[flip * kE8pNumAbs + best_a]) {
          flip = i;
        }
      }
    }
    negative[flip] = !negative[flip];
  }
  uint32_t index = static_cast<uint32_t>(best_a) | (plus ? 1u << 15 : 0u);
  for (int j = 1; j < kE8pDim; ++j) {
    if (negative[j]) index |= 1u << (7 + j);
  }
  *distance = best;
  return static_cast<uint16_t>(index);
}

// Index of the codeword nearest to x[0..k) (1 ≤ k ≤ 8), as
// E8pCodebook::Nearest.
GLVQ_HOST_DEVICE inline uint16_t E8pNearestOf(const E8pTables& t, const double* x, int k) {
  double minus_distance = 0, plus_distance = 0;
  const uint16_t minus = E8pNearestWithShift(t, x, k, /*plus=*/false, &minus_distance);
  const uint16_t plus = E8pNearestWithShift(t, x, k, /*plus=*/true, &plus_distance);
  return plus_distance < minus_distance ? plus : minus;
}

// Coordinate i < 8 of codeword `index` (exact, as e8p::Codeword).
GLVQ_HOST_DEVICE inline double E8pCoordinate(const E8pTables& t, uint16_t index, int i) {
  const int a = index & 0xFF, signs = (index >> 8) & 0x7F;
  int negate;
  if (i == 0) {
    int ones = 0;
    for (int j = 0; j < 7; ++j) ones += (signs >> j) & 1;
    negate = (ones + t.abs_parity[a]) & 1;
  } else {
    negate = (signs >> (i - 1)) & 1;
  }
  const double v = t.abs_by_coord[i * kE8pNumAbs + a];
  return (negate != 0 ? -v : v) + ((index >> 15) != 0 ? 0.25 : -0.25);
}

// Where E8P indices go, as the "e8p" tensor stores them: group after group,
// each rows × ceil(width / 8) row-major; `rows` may count a slice of rows.
struct E8pIndicesView {
  uint16_t* indices = nullptr;
  int64_t rows = 0, cols = 0, group_size = 0;  // group_size a multiple of 8

  GLVQ_HOST_DEVICE uint16_t& at(int64_t g, int64_t r, int64_t v) const {
    const int64_t rest = cols - g * group_size, width = rest < group_size ? rest : group_size;
    const int64_t per_row = (width + kE8pDim - 1) / kE8pDim;
    return indices[rows * g * (group_size / kE8pDim) + r * per_row + v];
  }
  // Indices per row over all groups, and in all.
  GLVQ_HOST_DEVICE int64_t VectorsPerRow() const {
    return (cols / group_size) * (group_size / kE8pDim) +
           (cols % group_size + kE8pDim - 1) / kE8pDim;
  }
  GLVQ_HOST_DEVICE int64_t size() const { return rows * VectorsPerRow(); }
};

}  // namespace glvq::cpu
