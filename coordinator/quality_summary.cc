#include "coordinator/quality_summary.h"

#include <algorithm>

namespace glvq::coordinator {

void QualityAccumulator::Add(uint64_t weights, const TensorQuality& q, const BitsAccounting& bits) {
  const double w = static_cast<double>(weights);
  min_sqnr_ = weights_ == 0 ? q.sqnr_db : std::min(min_sqnr_, q.sqnr_db);
  max_nmse_ = std::max(max_nmse_, q.nmse);
  weights_ += weights;
  nmse_ += w * q.nmse;
  sqnr_ += w * q.sqnr_db;
  proxy_ += w * q.proxy_loss;
  bits_ += bits;
}

v1::QualitySummary QualityAccumulator::Summary(uint32_t tensors) const {
  v1::QualitySummary s;
  s.set_tensors(tensors);
  if (weights_ == 0) return s;
  const double w = static_cast<double>(weights_);
  s.set_mean_nmse(nmse_ / w);
  s.set_max_nmse(max_nmse_);
  s.set_mean_sqnr_db(sqnr_ / w);
  s.set_min_sqnr_db(min_sqnr_);
  s.set_mean_proxy_loss(proxy_ / w);
  s.set_payload_bits_per_weight(bits_.PayloadPerWeight());
  s.set_total_bits_per_weight(bits_.TotalPerWeight());
  return s;
}

}  // namespace glvq::coordinator
