#include "common/quant/result.h"

#include <algorithm>
#include <cmath>

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

}  // namespace glvq::quant
