#include "worker/engine/group_range.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/engine/hessian.h"

namespace glvq::engine {

absl::StatusOr<quant::RangeResult> QuantizeRange(const Quantizer& quantizer, const RangeInput& in) {
  const int64_t width = in.w.cols;
  PreparedHessian h = PreparedHessian::Identity(width);
  HessianView view{in.hessian_block, width, in.hessian_mean_diagonal};
  if (in.hessian_block != nullptr) {
    if (!(in.hessian_mean_diagonal > 0) || !std::isfinite(in.hessian_mean_diagonal)) {
      return absl::InvalidArgumentError(
          absl::StrCat(in.name, ": the Hessian's mean diagonal must be positive and finite"));
    }
    auto prepared = PreparedHessian::FromData(in.hessian_block, width, width,
                                              quantizer.config().damp, in.hessian_mean_diagonal);
    if (!prepared.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(in.name, ": ", prepared.status().message()));
    }
    h = *std::move(prepared);
  }
  quant::RangeResult out;
  ASSIGN_OR_RETURN(out.result,
                   quantizer.Quantize(in.name, in.w, in.hessian_block ? &view : nullptr));
  // The sums the engine's quality is made of, accumulated the same way.
  const int64_t n = in.w.rows * width;
  std::vector<float> delta(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    delta[i] = in.w.data[i] - out.result.dequantized[i];
    out.sums.error += double(delta[i]) * delta[i];
    out.sums.reference += double(in.w.data[i]) * in.w.data[i];
  }
  out.sums.proxy_reference = h.WeightedSquaredNorm(in.w.data, in.w.rows);
  out.sums.proxy_error = h.WeightedSquaredNorm(delta.data(), in.w.rows);
  out.sums.top_error = out.result.tensor.quality->top_error;
  return out;
}

RangeInput InputOf(const quant::RangeData& data, const std::string& name) {
  return {name, {data.weights.data(), data.rows, data.width},
          data.hessian_block.empty() ? nullptr : data.hessian_block.data(),
          data.hessian_mean_diagonal};
}

}  // namespace glvq::engine
