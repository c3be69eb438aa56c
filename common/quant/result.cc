#include "common/quant/result.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace glvq::quant {

QualitySums& QualitySums::operator+=(const QualitySums& other) {
  error += other.error;
  reference += other.reference;
  proxy_error += other.proxy_error;
  proxy_reference += other.proxy_reference;
  top_error = std::max(top_error, other.top_error);
  return *this;
}

TensorQuality QualitySums::Quality() const {
  TensorQuality q;
  q.nmse = reference > 0 ? error / reference : 0.0;
  q.sqnr_db = q.nmse > 0 ? std::min(kMaxSqnrDb, -10.0 * std::log10(q.nmse)) : kMaxSqnrDb;
  q.proxy_loss = proxy_reference > 0 ? proxy_error / proxy_reference : 0.0;
  q.top_error = top_error;
  return q;
}

double TopWeightError(std::span<const float> w, std::span<const float> approx) {
  const auto n = static_cast<int64_t>(w.size());
  if (n == 0) return 0;
  const auto share = static_cast<int64_t>(std::ceil(static_cast<double>(n) * kTopWeightShare));
  const int64_t k = std::min(n, std::max<int64_t>(1, share));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(),
                   [w](int64_t a, int64_t b) { return std::abs(w[a]) > std::abs(w[b]); });
  double worst = 0;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t j = order[static_cast<size_t>(i)];
    if (w[j] != 0) worst = std::max(worst, std::abs(double(w[j]) - approx[j]) / std::abs(w[j]));
  }
  return worst;
}

}  // namespace glvq::quant
