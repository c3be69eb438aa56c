#include "worker/cpu/scalar_grid.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/base/status_macros.h"

namespace glvq::cpu {
namespace {

using engine::RtnVariant;

// Clip candidates: 1.00 down to 0.10 in steps of 0.01. The floor is below
// the usual 0.3 because the 1-bit optimum on a Gaussian group of 128 is
// about 0.8σ / 2.6σ ≈ 0.3, and heavy-tailed groups want less still.
constexpr int kClipHundredthsMax = 100;
constexpr int kClipHundredthsMin = 10;

// The format needs a positive, finite scale whose levels (|code − zero| ≤
// 255) still decode to finite floats; weights so large or so tiny that the
// clamp bites lose precision rather than validity.
float ToStoredScale(double scale) {
  constexpr double kMin = std::numeric_limits<float>::min();
  constexpr double kMax = std::numeric_limits<float>::max() / 256.0;
  return static_cast<float>(std::clamp(scale, kMin, kMax));
}

ScalarGrid FitMinMax(std::span<const double> v, int max_code) {
  const auto [lo_it, hi_it] = std::minmax_element(v.begin(), v.end());
  const double lo = std::min(*lo_it, 0.0), hi = std::max(*hi_it, 0.0);
  if (hi == lo) return {1.0f, 0.0f, max_code};
  const float scale = ToStoredScale((hi - lo) / max_code);
  const double zero = std::clamp(std::round(-lo / scale), 0.0, double(max_code));
  return {scale, static_cast<float>(zero), max_code};
}

// The search's inner loop (91 candidates per row-group), so it multiplies
// by the reciprocal instead of calling Encode's division: a candidate's
// error may differ in the last bits, which only matters for exact ties.
double WeightedError(const ScalarGrid& grid, std::span<const double> v,
                     std::span<const double> importance) {
  const double inv = 1.0 / grid.scale, offset = grid.zero + 0.5, top = grid.max_code;
  double err = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double code = static_cast<int>(std::clamp(v[i] * inv + offset, 0.0, top));
    const double d = v[i] - grid.scale * (code - grid.zero);
    err += importance[i] * d * d;
  }
  return err;
}

ScalarGrid FitClipSearch(std::span<const double> v, std::span<const double> importance, int bits,
                         int max_code) {
  double amax = 0;
  for (double x : v) amax = std::max(amax, std::abs(x));
  const double half_levels = std::ldexp(1.0, bits - 1) - 0.5;
  // Midrise levels never include 0, so an all-zero row-group switches to
  // the integer zero point 2^(b−1), whose code decodes to exactly 0.
  if (amax == 0) return {1.0f, static_cast<float>(std::ldexp(1.0, bits - 1)), max_code};
  ScalarGrid best;
  double best_err = std::numeric_limits<double>::infinity();
  for (int h = kClipHundredthsMax; h >= kClipHundredthsMin; --h) {
    const double clip = h / 100.0;
    const ScalarGrid grid{ToStoredScale(clip * amax / half_levels), static_cast<float>(half_levels),
                          max_code};
    const double err = WeightedError(grid, v, importance);
    if (err < best_err) {
      best_err = err;
      best = grid;
    }
  }
  return best;
}

}  // namespace

uint8_t ScalarGrid::Encode(double w) const {
  // Clamping before truncating makes truncation a floor (the value is
  // non-negative) without a libm call: baseline x86-64 has no SSE4.1 round.
  return static_cast<uint8_t>(std::clamp(w / scale + zero + 0.5, 0.0, double(max_code)));
}

double ScalarGrid::Decode(uint8_t code) const {
  return static_cast<float>(double(scale) * (code - double(zero)));
}

ScalarGrid FitScalarGrid(std::span<const double> values, std::span<const double> importance,
                         int bits, RtnVariant variant) {
  const int max_code = (1 << bits) - 1;
  return variant == RtnVariant::kMinMax ? FitMinMax(values, max_code)
                                        : FitClipSearch(values, importance, bits, max_code);
}

ScalarQuantization::ScalarQuantization(int64_t num_rows, int64_t num_cols,
                                       int64_t columns_per_group)
    : rows(num_rows),
      cols(num_cols),
      group_size(columns_per_group),
      num_groups((num_cols + columns_per_group - 1) / columns_per_group),
      grids(static_cast<size_t>(num_groups * num_rows)),
      codes(static_cast<size_t>(num_rows * num_cols)) {}

int64_t ScalarQuantization::GroupWidth(int64_t g) const {
  return std::min(group_size, cols - g * group_size);
}

absl::Status AssembleRtnTensor(const engine::Quantizer::Problem& p,
                               const engine::QuantizerConfig& config, int bits,
                               const ScalarQuantization& q, engine::QuantizeResult* result) {
  QuantizedTensor t = engine::MakeTensorShell(p, config, "rtn", 1);
  t.bits.assign(static_cast<size_t>(q.num_groups), static_cast<uint8_t>(bits));
  t.scale.reserve(q.grids.size());
  t.zero.reserve(q.grids.size());
  for (const ScalarGrid& grid : q.grids) {
    t.scale.push_back(grid.scale);
    t.zero.push_back(grid.zero);
  }
  RETURN_IF_ERROR(PackGroupCodes(q.codes, &t));
  for (engine::GroupStats& g : result->groups) g.bits = bits;
  result->tensor = std::move(t);
  return absl::OkStatus();
}

}  // namespace glvq::cpu
