// Quantizing a range of a tensor's column groups: the unit of work of a
// task (proto/glvq/v1/task.proto; reading and slicing ranges is
// common/quant/tensor_range.h). For methods whose groups are independent
// (glvq without ldlq/sdba/rht, rtn without rht: the only ones the planner
// splits) a range gives exactly the bytes the same groups get when the
// whole tensor is quantized at once, so the coordinator can concatenate the
// ranges of a tensor (coordinator/assembler.h).
//
// Two things make that hold: ranges start on group boundaries, and the
// Hessian block of a range is damped with the mean diagonal of the whole
// Hessian (HessianView::mean_diagonal).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/quant/result.h"
#include "common/quant/tensor_range.h"
#include "worker/engine/quantizer.h"

namespace glvq::engine {

struct RangeInput {
  std::string name;  // the whole tensor's name (seeds derive from it)
  MatrixView w;      // the range's columns: rows × width, F32
  // width × width diagonal block of the tensor's Hessian (undamped), or null.
  const double* hessian_block = nullptr;
  double hessian_mean_diagonal = 0;  // mean(diag H) of the whole Hessian
};

// A view of `data` (which must outlive it) as the range of tensor `name`.
RangeInput InputOf(const quant::RangeData& data, const std::string& name);

// Quantizes one range with `quantizer`. Errors as Quantizer::Quantize, and
// INVALID_ARGUMENT for a Hessian block without a positive finite mean
// diagonal.
absl::StatusOr<quant::RangeResult> QuantizeRange(const Quantizer& quantizer,
                                                 const RangeInput& input);

}  // namespace glvq::engine
