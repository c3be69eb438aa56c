// Randomized Hadamard incoherence processing (RHT) for any dimension, as
// the packed format specifies it (docs/format.md §4.4–4.5): an orthogonal n × n
// transform T_n, drawn deterministically from a 64-bit seed and applied in
// O(n log n). The encoder quantizes W̃ = T_m W T_nᵀ; the decoder returns
// Ŵ = T_mᵀ Ŵ̃ T_n. Both sides live here so that they cannot drift apart.
//
// Construction (why: a Sylvester Hadamard only exists for powers of two,
// and a block-diagonal of small Hadamards leaves coordinates that meet only
// a tiny block badly mixed):
//  - n = 2^k:  T = H_n · D₁ / √n  (D₁ random signs);
//  - otherwise, with m = 2^⌊log₂ n⌋ (so m < n < 2m): two overlapping
//    windows of m coordinates, the first [0, m) and the last [n − m, n),
//    T = B · D₂ · A · D₁ where A applies H_m/√m to the first window, B to
//    the last one, and D₁, D₂ are random signs. The windows cover every
//    coordinate, so each input spreads over at least m > n/2 outputs, and
//    D₂ keeps A's and B's Walsh patterns from cancelling.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace glvq {

// Unnormalised in-place Sylvester–Walsh–Hadamard transform over `n`
// elements (n a power of two), each element `lanes` contiguous doubles:
// element i is x[i·lanes, (i+1)·lanes). Butterflies in the order the format
// specifies: for h = 1, 2, 4, …, n/2 and every i with (i & h) == 0,
// (x_i, x_{i+h}) ← (x_i + x_{i+h}, x_i − x_{i+h}).
void WalshHadamard(double* x, int64_t n, int64_t lanes);

class RandomizedHadamard {
 public:
  // T_n for n >= 1 and `seed` (the signs are drawn from Rng(seed)).
  RandomizedHadamard(int64_t n, uint64_t seed);

  int64_t size() const { return n_; }

  // x ← T x and x ← Tᵀ x (= T⁻¹ x) for n elements of `lanes` contiguous
  // doubles each (x.size() == n · lanes): every lane is transformed alike,
  // which lets a row-major matrix be mixed along its rows in one pass.
  void Apply(std::span<double> x, int64_t lanes = 1) const;
  void ApplyInverse(std::span<double> x, int64_t lanes = 1) const;

 private:
  void ApplyWindow(double* x, int64_t first, int64_t lanes) const;
  static void ApplySigns(const std::vector<double>& signs, double* x, int64_t lanes);

  int64_t n_;
  int64_t window_;              // m: the largest power of two <= n
  double inv_sqrt_window_;      // 1 / √m, as the format computes it
  std::vector<double> signs1_;  // D₁, ±1
  std::vector<double> signs2_;  // D₂ (empty when n is a power of two)
};

// The two seeds of a tensor's RHT, as the `rht_seed` component stores them.
struct RhtSeeds {
  uint64_t row = 0;  // T_m, mixes the rows (output features)
  uint64_t col = 0;  // T_n, mixes the columns (input features)
};

// W̃ = T_m W T_nᵀ and its inverse W = T_mᵀ W̃ T_n, in place, for a rows × cols
// row-major matrix. The inverse first transforms every row by T_nᵀ, then
// every column by T_mᵀ (the order docs/format.md fixes for reproducibility);
// the forward transform does the exact reverse.
void RhtForward(std::span<double> w, int64_t rows, int64_t cols, const RhtSeeds& seeds);
void RhtInverse(std::span<double> w, int64_t rows, int64_t cols, const RhtSeeds& seeds);

}  // namespace glvq
