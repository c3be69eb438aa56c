// Nearest-codeword search in the E8P codebook (docs/algorithms.md §3.3; the
// index → codeword map is the format's, common/packed/e8p.h).
//
// The codebook's structure makes the search cheap without enumerating its
// 65 536 codewords: a codeword is s ⊙ a ± ¼ with a from 256 positive abs
// vectors and the sign vector s free up to one parity constraint. For a
// fixed shift and abs vector the best signs are those of y = x ∓ ¼; when
// their parity is wrong, the cheapest repair flips the coordinate with the
// least |y_i| · a_i. So 2 × 256 candidates of 8 coordinates each decide
// the search exactly.
#pragma once

#include <array>
#include <cstdint>

#include "common/packed/e8p.h"
#include "worker/cpu/e8p_search.h"

namespace glvq::cpu {

// The scale (codebook units per unit RMS of the input) at which the
// codebook quantizes N(0, 1) best: QuIP#'s 1.03 (measured in e8p_test).
inline constexpr double kE8pGaussianScale = 1.03;

class E8pCodebook {
 public:
  static const E8pCodebook& Get();

  // Index of the codeword nearest to x in the first k coordinates
  // (1 <= k <= 8; the others are free, as for a ragged row's last vector).
  // Ties go to the lowest (shift, abs vector) candidate.
  uint16_t Nearest(const double* x, int k = e8p::kDim) const;

  // The same by enumerating all 65 536 codewords (tests only).
  uint16_t NearestBruteForce(const double* x, int k = e8p::kDim) const;

  // The tables as E8pNearestOf (e8p_search.h) reads them; owned by the
  // codebook, which lives for the whole process.
  E8pTables tables() const { return {abs_by_coord_[0].data(), abs_parity_.data()}; }

  // Codeword of `index` (exact).
  const std::array<double, e8p::kDim>& Codeword(uint16_t index) const {
    return codewords_[index];
  }

 private:
  E8pCodebook();

  // Best index for one shift; *distance receives its squared error.
  uint16_t NearestWithShift(const double* x, int k, bool plus, double* distance) const;

  // The abs vectors (a, not doubled) coordinate-major, so that the scan
  // over all 256 of them vectorizes.
  std::array<std::array<double, e8p::kNumAbs>, e8p::kDim> abs_by_coord_;
  std::array<int, e8p::kNumAbs> abs_parity_;  // Σ a_i mod 2
  // 1 where a sign pattern with an even (odd) number of negative entries
  // has the wrong parity for abs vector a, else 0.
  std::array<double, e8p::kNumAbs> wrong_if_even_, wrong_if_odd_;
  std::array<std::array<double, e8p::kDim>, 1 << 16> codewords_;
};

}  // namespace glvq::cpu
