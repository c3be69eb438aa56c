// Running quality figures of a job (proto QualitySummary), over the tasks
// committed so far and, once the output is written, over its tensors.
#pragma once

#include <cstdint>

#include "common/packed/quantized_tensor.h"
#include "glvq/v1/job.pb.h"

namespace glvq::coordinator {

// Means are weighted by the number of weights of each unit added.
class QualityAccumulator {
 public:
  void Add(uint64_t weights, const TensorQuality& quality, const BitsAccounting& bits);
  // `tensors` is reported as given (the accumulator may see ranges).
  v1::QualitySummary Summary(uint32_t tensors) const;

 private:
  uint64_t weights_ = 0;
  double nmse_ = 0, sqnr_ = 0, proxy_ = 0;
  double max_nmse_ = 0, min_sqnr_ = 0;
  BitsAccounting bits_;
};

}  // namespace glvq::coordinator
