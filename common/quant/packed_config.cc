#include "common/quant/packed_config.h"

namespace glvq::quant {
namespace {

int64_t TensorDim(const QuantizerConfig& c) {
  switch (c.method) {
    case Method::kRtn:
    case Method::kGptq:
      return 1;
    case Method::kTrellis:
      return c.trellis.window;
    default:
      return c.dim;
  }
}

}  // namespace

QuantizationConfig PackedQuantizationConfig(const QuantizerConfig& c) {
  QuantizationConfig q{MethodName(c.method), c.bits, TensorDim(c), c.group_size, {}};
  auto& p = q.parameters;
  p["rht"] = c.rht;
  switch (c.method) {
    case Method::kGlvq:
      p["mu_min"] = c.glvq.mu_min;
      p["mu_max"] = c.glvq.mu_max;
      p["mu_grid"] = int64_t{c.glvq.mu_grid};
      p["row_gain"] = c.glvq.row_gain;
      [[fallthrough]];
    case Method::kTrellis:
      p["ldlq"] = c.ldlq;
      p["sdba"] = c.sdba;
      if (c.method == Method::kTrellis) {
        p["window"] = int64_t{c.trellis.window};
        p["tile_rows"] = int64_t{c.trellis.tile_rows};
      }
      break;
    case Method::kGptq:
      p["act_order"] = c.act_order;
      [[fallthrough]];
    case Method::kRtn:
      p["grid"] = std::string(c.rtn_variant == RtnVariant::kMinMax ? "min_max" : "clip_search");
      break;
    case Method::kPvq:
      p["gain_bits"] = int64_t{c.pvq.gain_bits};
      break;
    case Method::kE8p:
      break;
  }
  return q;
}

}  // namespace glvq::quant
