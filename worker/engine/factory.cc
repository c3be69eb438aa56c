#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cpu/e8p_quantizer.h"
#include "worker/cpu/glvq_quantizer.h"
#include "worker/cpu/gptq_quantizer.h"
#include "worker/cpu/pvq_quantizer.h"
#include "worker/cpu/rtn_quantizer.h"
#include "worker/cpu/trellis_quantizer.h"
#include "worker/engine/quantizer.h"

namespace glvq::engine {

absl::StatusOr<std::unique_ptr<Quantizer>> MakeQuantizer(const quant::QuantizerConfig& config) {
  RETURN_IF_ERROR(quant::ValidateConfig(config));
  switch (config.method) {
    case quant::Method::kGlvq:
      return cpu::MakeGlvqQuantizer(config);
    case quant::Method::kRtn:
      return cpu::MakeRtnQuantizer(config);
    case quant::Method::kGptq:
      return cpu::MakeGptqQuantizer(config);
    case quant::Method::kE8p:
      return cpu::MakeE8pQuantizer(config);
    case quant::Method::kPvq:
      return cpu::MakePvqQuantizer(config);
    case quant::Method::kTrellis:
      return cpu::MakeTrellisQuantizer(config);
    default:
      return absl::UnimplementedError(
          absl::StrCat("method ", quant::MethodName(config.method), " is not available yet"));
  }
}

}  // namespace glvq::engine
