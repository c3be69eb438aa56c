#include "worker/cpu/pvq_projection.h"

#include <algorithm>
#include <cmath>

namespace glvq::cpu {

void ProjectToPyramid(std::span<const double> x, int pulses, std::span<int32_t> y) {
  std::fill(y.begin(), y.end(), 0);
  const size_t k = x.size();
  double l1 = 0;
  for (double v : x) l1 += std::fabs(v);
  if (!(l1 > 0) || !std::isfinite(l1)) {
    y[0] = pulses;
    return;
  }
  // ⌊K|x_i|/‖x‖₁⌋ sums to at most K: each floor is at most its exact value
  // plus a rounding error far below 1.
  int left = pulses;
  double xy = 0, yy = 0;
  const double per_unit = pulses / l1;
  for (size_t i = 0; i < k; ++i) {
    const double ax = std::fabs(x[i]);
    const auto p = static_cast<int32_t>(std::floor(ax * per_unit));
    y[i] = p;
    left -= p;
    xy += ax * p;
    yy += double(p) * p;
  }
  for (; left > 0; --left) {
    // Maximise (xy + |x_j|)² / (yy + 2 y_j + 1) by cross-multiplication.
    size_t best = 0;
    double best_num = -1, best_den = 1;
    for (size_t j = 0; j < k; ++j) {
      const double t = xy + std::fabs(x[j]);
      const double num = t * t, den = yy + 2.0 * y[j] + 1.0;
      if (num * best_den > best_num * den) {
        best = j;
        best_num = num;
        best_den = den;
      }
    }
    xy += std::fabs(x[best]);
    yy += 2.0 * y[best] + 1.0;
    ++y[best];
  }
  for (size_t i = 0; i < k; ++i) {
    if (x[i] < 0) y[i] = -y[i];
  }
}

namespace {

// Index of the level nearest to g (levels increasing; ties: the lower).
int NearestLevel(std::span<const float> levels, double g) {
  const auto it = std::lower_bound(levels.begin(), levels.end(), g,
                                   [](float level, double v) { return level < v; });
  if (it == levels.begin()) return 0;
  const auto i = static_cast<int>(it - levels.begin());
  if (it == levels.end()) return i - 1;
  return g - levels[i - 1] <= *it - g ? i - 1 : i;
}

}  // namespace

int CodePvqVector(std::span<const double> w, float norm, int pulses,
                  std::span<const float> levels, std::span<int32_t> y,
                  std::span<double> w_hat) {
  ProjectToPyramid(w, pulses, y);
  int64_t yy = 0;
  double wy = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    yy += int64_t{y[i]} * y[i];
    wy += w[i] * y[i];
  }
  const double y_norm = std::sqrt(static_cast<double>(yy));
  const int code = norm > 0 ? NearestLevel(levels, wy / y_norm / norm) : 0;
  const double f = static_cast<double>(norm) * static_cast<double>(levels[code]) / y_norm;
  for (size_t i = 0; i < w.size(); ++i) w_hat[i] = f * y[i];
  return code;
}

}  // namespace glvq::cpu
