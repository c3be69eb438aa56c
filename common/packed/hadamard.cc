#include "common/packed/hadamard.h"

#include <bit>
#include <cmath>

#include "common/base/random.h"

namespace glvq {
namespace {

// One sign per coordinate from the top bit of each draw (the format's rule).
std::vector<double> DrawSigns(Rng& rng, int64_t n) {
  std::vector<double> signs(static_cast<size_t>(n));
  for (double& s : signs) s = (rng.NextU64() >> 63) != 0 ? -1.0 : 1.0;
  return signs;
}

}  // namespace

void WalshHadamard(double* x, int64_t n, int64_t lanes) {
  // Butterflies within a stage are disjoint, so their order is immaterial.
  for (int64_t h = 1; h < n; h *= 2) {
    for (int64_t i0 = 0; i0 < n; i0 += 2 * h) {
      for (int64_t i = i0; i < i0 + h; ++i) {
        double* a = x + i * lanes;
        double* b = x + (i + h) * lanes;
        for (int64_t l = 0; l < lanes; ++l) {
          const double u = a[l], v = b[l];
          a[l] = u + v;
          b[l] = u - v;
        }
      }
    }
  }
}

RandomizedHadamard::RandomizedHadamard(int64_t n, uint64_t seed)
    : n_(n), window_(static_cast<int64_t>(std::bit_floor(static_cast<uint64_t>(n)))) {
  inv_sqrt_window_ = 1.0 / std::sqrt(static_cast<double>(window_));
  Rng rng(seed);
  signs1_ = DrawSigns(rng, n_);
  if (window_ != n_) signs2_ = DrawSigns(rng, n_);
}

void RandomizedHadamard::ApplySigns(const std::vector<double>& signs, double* x,
                                    int64_t lanes) {
  for (size_t i = 0; i < signs.size(); ++i) {
    if (signs[i] > 0) continue;
    double* e = x + static_cast<int64_t>(i) * lanes;
    for (int64_t l = 0; l < lanes; ++l) e[l] = -e[l];
  }
}

// H_m/√m on the m elements starting at element `first`; H_m is symmetric and
// orthogonal once normalised, so this is its own inverse.
void RandomizedHadamard::ApplyWindow(double* x, int64_t first, int64_t lanes) const {
  double* w = x + first * lanes;
  WalshHadamard(w, window_, lanes);
  const int64_t count = window_ * lanes;
  for (int64_t i = 0; i < count; ++i) w[i] *= inv_sqrt_window_;
}

void RandomizedHadamard::Apply(std::span<double> x, int64_t lanes) const {
  ApplySigns(signs1_, x.data(), lanes);
  ApplyWindow(x.data(), 0, lanes);
  if (signs2_.empty()) return;
  ApplySigns(signs2_, x.data(), lanes);
  ApplyWindow(x.data(), n_ - window_, lanes);
}

void RandomizedHadamard::ApplyInverse(std::span<double> x, int64_t lanes) const {
  if (!signs2_.empty()) {
    ApplyWindow(x.data(), n_ - window_, lanes);
    ApplySigns(signs2_, x.data(), lanes);
  }
  ApplyWindow(x.data(), 0, lanes);
  ApplySigns(signs1_, x.data(), lanes);
}

void RhtForward(std::span<double> w, int64_t rows, int64_t cols, const RhtSeeds& seeds) {
  RandomizedHadamard(rows, seeds.row).Apply(w, cols);
  const RandomizedHadamard t_cols(cols, seeds.col);
  for (int64_t r = 0; r < rows; ++r) t_cols.Apply(w.subspan(r * cols, cols));
}

void RhtInverse(std::span<double> w, int64_t rows, int64_t cols, const RhtSeeds& seeds) {
  const RandomizedHadamard t_cols(cols, seeds.col);
  for (int64_t r = 0; r < rows; ++r) t_cols.ApplyInverse(w.subspan(r * cols, cols));
  RandomizedHadamard(rows, seeds.row).ApplyInverse(w, cols);
}

}  // namespace glvq
