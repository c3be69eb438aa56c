#include "model/quantize_model.h"

#include <string>
#include <vector>

#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "model/calibration.h"
#include "worker/engine/quantizer.h"

namespace glvq::model {

absl::Status QuantizeModel(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                           const engine::QuantizerConfig& config,
                           const SafetensorsModel* hessians, const ConfigForWeight& per_weight) {
  ASSIGN_OR_RETURN(const SafetensorsModel source, SafetensorsModel::Open(model_dir));
  ASSIGN_OR_RETURN(auto quantizer, engine::MakeQuantizer(config));
  std::vector<QuantizedTensor> quantized;
  for (const std::string& name : source.tensor_names()) {
    if (name.find("_proj.weight") == std::string::npos) continue;
    ASSIGN_OR_RETURN(const TensorView view, source.Get(name));
    if (view.shape.size() != 2) continue;
    std::vector<float> w(static_cast<size_t>(view.NumElements()));
    RETURN_IF_ERROR(ConvertToF32(view.dtype, view.data, w));
    std::optional<WeightHessian> h;
    if (hessians != nullptr) {
      ASSIGN_OR_RETURN(h, LoadHessianFor(*hessians, name));
    }
    const engine::HessianView hv{h ? h->data.data() : nullptr, h ? h->n : 0};
    if (per_weight) {
      ASSIGN_OR_RETURN(quantizer, engine::MakeQuantizer(per_weight(config, view.shape[1])));
    }
    ASSIGN_OR_RETURN(
        engine::QuantizeResult r,
        quantizer->Quantize(name, {w.data(), view.shape[0], view.shape[1]}, h ? &hv : nullptr));
    quantized.push_back(std::move(r.tensor));
  }
  const bool scalar =
      config.method == engine::Method::kRtn || config.method == engine::Method::kGptq;
  const QuantizationConfig qc{engine::MethodName(config.method), config.bits,
                              scalar ? 1 : config.dim, config.group_size};
  return WritePackedModel(out, source, quantized, qc);
}

}  // namespace glvq::model
