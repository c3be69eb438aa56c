#include "model/quantize_model.h"

#include <string>
#include <vector>

#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "model/calibration.h"
#include "common/quant/packed_config.h"
#include "common/base/parallel.h"
#include "worker/engine/quantizer.h"

namespace glvq::model {
namespace {

// The weights QuantizeModel quantizes: every 2-D "*_proj.weight".
absl::StatusOr<std::vector<std::string>> ProjectionWeights(const SafetensorsModel& source) {
  std::vector<std::string> names;
  for (const std::string& name : source.tensor_names()) {
    if (name.find("_proj.weight") == std::string::npos) continue;
    ASSIGN_OR_RETURN(const TensorView view, source.Get(name));
    if (view.shape.size() == 2) names.push_back(name);
  }
  return names;
}

absl::StatusOr<QuantizedTensor> QuantizeOne(const SafetensorsModel& source,
                                            const std::string& name,
                                            const quant::QuantizerConfig& config,
                                            const SafetensorsModel* hessians,
                                            const ConfigForWeight& per_weight) {
  ASSIGN_OR_RETURN(const TensorView view, source.Get(name));
  std::vector<float> w(static_cast<size_t>(view.NumElements()));
  RETURN_IF_ERROR(ConvertToF32(view.dtype, view.data, w));
  std::optional<WeightHessian> h;
  if (hessians != nullptr) {
    ASSIGN_OR_RETURN(h, LoadHessianFor(*hessians, name));
  }
  const engine::HessianView hv{h ? h->data.data() : nullptr, h ? h->n : 0};
  ASSIGN_OR_RETURN(auto quantizer,
                   engine::MakeQuantizer(per_weight ? per_weight(config, name, view.shape[1]) : config));
  ASSIGN_OR_RETURN(
      quant::QuantizeResult r,
      quantizer->Quantize(name, {w.data(), view.shape[0], view.shape[1]}, h ? &hv : nullptr));
  return std::move(r.tensor);
}

}  // namespace

absl::Status QuantizeModel(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                           const quant::QuantizerConfig& config,
                           const SafetensorsModel* hessians, const ConfigForWeight& per_weight) {
  ASSIGN_OR_RETURN(const SafetensorsModel source, SafetensorsModel::Open(model_dir));
  RETURN_IF_ERROR(quant::ValidateConfig(config));
  ASSIGN_OR_RETURN(const std::vector<std::string> names, ProjectionWeights(source));
  // Tensors are independent: config.threads of them at a time, each on one
  // engine thread (results never depend on the thread count).
  quant::QuantizerConfig one_thread = config;
  one_thread.threads = 1;
  std::vector<absl::StatusOr<QuantizedTensor>> results(names.size(),
                                                       absl::UnknownError("not run"));
  ParallelFor(static_cast<int64_t>(names.size()), config.threads, [&](int64_t i) {
    results[i] = QuantizeOne(source, names[i], one_thread, hessians, per_weight);
  });
  std::vector<QuantizedTensor> quantized;
  for (auto& r : results) {
    RETURN_IF_ERROR(r.status());
    quantized.push_back(*std::move(r));
  }
  return WritePackedModel(out, source, quantized, quant::PackedQuantizationConfig(config));
}

}  // namespace glvq::model
