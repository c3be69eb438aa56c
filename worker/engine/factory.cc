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

absl::StatusOr<std::unique_ptr<Quantizer>> MakeQuantizer(const QuantizerConfig& config) {
  RETURN_IF_ERROR(ValidateConfig(config));
  switch (config.method) {
    case Method::kGlvq:
      return cpu::MakeGlvqQuantizer(config);
    case Method::kRtn:
      return cpu::MakeRtnQuantizer(config);
    case Method::kGptq:
      return cpu::MakeGptqQuantizer(config);
    case Method::kE8p:
      return cpu::MakeE8pQuantizer(config);
    case Method::kPvq:
      return cpu::MakePvqQuantizer(config);
    case Method::kTrellis:
      return cpu::MakeTrellisQuantizer(config);
    default:
      return absl::UnimplementedError(
          absl::StrCat("method ", MethodName(config.method), " is not available yet"));
  }
}

}  // namespace glvq::engine
