// The arithmetic of the "rtn" scalar grids (docs/format.md §4.2; docs/algorithms.md
// §3.1), shared by the CPU reference (scalar_grid.h) and the CUDA kernels
// (worker/cuda/scalar_kernels.cu) so that both fit and round the same way,
// operation for operation. Device-safe C++17 (common/base/host_device.h).
#pragma once

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "common/base/host_device.h"

namespace glvq::cpu {

// std::clamp's semantics (lo if v < lo, hi if hi < v, else v), device-safe.
GLVQ_HOST_DEVICE inline double ClampTo(double v, double lo, double hi) {
  return v < lo ? lo : (hi < v ? hi : v);
}

// One row-group's grid: w = scale · (code − zero). Both fields are held as
// the F32 values the format stores, so that Decode() is bit-identical to
// the reference decoder.
struct ScalarGrid {
  float scale = 1.0f;  // > 0, finite
  float zero = 0.0f;   // finite; an integer for min–max, 2^(b−1) − ½ for midrise
  int max_code = 1;    // 2^b − 1

  // The code of the level nearest to `w` (clamped to the grid's range).
  // Clamping before truncating makes truncation a floor (the value is
  // non-negative) without a libm call: baseline x86-64 has no SSE4.1 round.
  GLVQ_HOST_DEVICE uint8_t Encode(double w) const {
    return static_cast<uint8_t>(ClampTo(w / scale + zero + 0.5, 0.0, double(max_code)));
  }
  // The weight DequantizeRef decodes `code` to.
  GLVQ_HOST_DEVICE double Decode(uint8_t code) const {
    return static_cast<float>(double(scale) * (code - double(zero)));
  }
};

namespace grid_detail {

// Clip candidates: 1.00 down to 0.10 in steps of 0.01. The floor is below
// the usual 0.3 because the 1-bit optimum on a Gaussian group of 128 is
// about 0.8σ / 2.6σ ≈ 0.3, and heavy-tailed groups want less still.
inline constexpr int kClipHundredthsMax = 100;
inline constexpr int kClipHundredthsMin = 10;

// The format needs a positive, finite scale whose levels (|code − zero| ≤
// 255) still decode to finite floats; weights so large or so tiny that the
// clamp bites lose precision rather than validity.
GLVQ_HOST_DEVICE inline float ToStoredScale(double scale) {
  return static_cast<float>(ClampTo(scale, double(FLT_MIN), double(FLT_MAX) / 256.0));
}

template <typename Values>
GLVQ_HOST_DEVICE ScalarGrid FitMinMax(const Values& v, int64_t n, int max_code) {
  double lo = v(0), hi = v(0);
  for (int64_t i = 1; i < n; ++i) {
    const double x = v(i);
    if (x < lo) lo = x;
    if (hi < x) hi = x;
  }
  lo = lo < 0.0 ? lo : 0.0;
  hi = hi > 0.0 ? hi : 0.0;
  if (hi == lo) return {1.0f, 0.0f, max_code};
  const float scale = ToStoredScale((hi - lo) / max_code);
  const double zero = ClampTo(round(-lo / scale), 0.0, double(max_code));
  return {scale, static_cast<float>(zero), max_code};
}

// The search's inner loop (91 candidates per row-group), so it multiplies
// by the reciprocal instead of calling Encode's division: a candidate's
// error may differ in the last bits, which only matters for exact ties.
template <typename Values, typename Importance>
GLVQ_HOST_DEVICE double WeightedError(const ScalarGrid& grid, const Values& v,
                                      const Importance& importance, int64_t n) {
  const double inv = 1.0 / grid.scale, offset = grid.zero + 0.5, top = grid.max_code;
  double err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = v(i);
    const double code = static_cast<int>(ClampTo(x * inv + offset, 0.0, top));
    const double d = x - grid.scale * (code - grid.zero);
    err += importance(i) * d * d;
  }
  return err;
}

template <typename Values, typename Importance>
GLVQ_HOST_DEVICE ScalarGrid FitClipSearch(const Values& v, const Importance& importance, int64_t n,
                                          int bits, int max_code) {
  double amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = fmax(amax, fabs(v(i)));
  const double half_levels = ldexp(1.0, bits - 1) - 0.5;
  // Midrise levels never include 0, so an all-zero row-group switches to
  // the integer zero point 2^(b−1), whose code decodes to exactly 0.
  if (amax == 0) return {1.0f, static_cast<float>(ldexp(1.0, bits - 1)), max_code};
  ScalarGrid best;
  double best_err = HUGE_VAL;
  for (int h = kClipHundredthsMax; h >= kClipHundredthsMin; --h) {
    const double clip = h / 100.0;
    const ScalarGrid grid{ToStoredScale(clip * amax / half_levels), static_cast<float>(half_levels),
                          max_code};
    const double err = WeightedError(grid, v, importance, n);
    if (err < best_err) {
      best_err = err;
      best = grid;
    }
  }
  return best;
}

}  // namespace grid_detail

// The grid of one row-group of n ≥ 1 values with `bits` bits per code
// (1..8); values(i) and importance(i) (one non-negative weight per value:
// diag H, or ones) are read through accessors so that device code can read
// strided rows. min_max:
//  - true (RtnVariant::kMinMax): asymmetric over [min(v, 0), max(v, 0)]
//    with an integer zero point (GPTQ's convention: the range always holds
//    0, so the zero point never needs clamping and 0 is exactly
//    representable);
//  - false (kClipSearch): symmetric midrise whose outermost level is
//    clip · max|v|, clip searched over 1.00, 0.99, … 0.10 for the least
//    Σ importance_i (v_i − v̂_i)² (the first, largest clip wins ties).
// A row-group of zeros gets a grid that decodes to exactly 0; the scale is
// always positive and finite.
template <typename Values, typename Importance>
GLVQ_HOST_DEVICE ScalarGrid FitScalarGridOf(const Values& values, const Importance& importance,
                                            int64_t n, int bits, bool min_max) {
  const int max_code = (1 << bits) - 1;
  return min_max ? grid_detail::FitMinMax(values, n, max_code)
                 : grid_detail::FitClipSearch(values, importance, n, bits, max_code);
}

// Codes and grids laid out as the "rtn" tensor stores them
// (ScalarQuantization): grid (g, r) at g·rows + r; group g's codes
// row-major from rows·g·group_size on. `rows` may count a slice of the
// tensor's rows (a GPU's), r being the row within it.
struct ScalarCodesView {
  ScalarGrid* grids = nullptr;
  uint8_t* codes = nullptr;
  int64_t rows = 0, cols = 0, group_size = 0;

  GLVQ_HOST_DEVICE int64_t GroupWidth(int64_t g) const {
    const int64_t rest = cols - g * group_size;
    return rest < group_size ? rest : group_size;
  }
  GLVQ_HOST_DEVICE ScalarGrid& grid(int64_t g, int64_t r) const { return grids[g * rows + r]; }
  GLVQ_HOST_DEVICE uint8_t& code(int64_t g, int64_t r, int64_t c) const {
    return codes[rows * g * group_size + r * GroupWidth(g) + c];
  }
};

// values(i) = base[i · stride]: a row-group read from a matrix of doubles.
struct StridedValues {
  const double* base;
  int64_t stride;
  GLVQ_HOST_DEVICE double operator()(int64_t i) const { return base[i * stride]; }
};

}  // namespace glvq::cpu
