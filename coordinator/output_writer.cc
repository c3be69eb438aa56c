#include "coordinator/output_writer.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/packed/packed_model.h"
#include "common/rpc/result_codec.h"
#include "coordinator/assembler.h"
#include "coordinator/quality_summary.h"

namespace glvq::coordinator {
namespace {

// The model-wide description of the job's method in the packed format.
absl::StatusOr<QuantizationConfig> PackedConfig(const v1::JobSpec& spec) {
  ASSIGN_OR_RETURN(const engine::QuantizerConfig c, jobspec::ToQuantizerConfig(spec.quantizer()));
  const bool scalar = c.method == engine::Method::kRtn || c.method == engine::Method::kGptq;
  return QuantizationConfig{engine::MethodName(c.method), c.bits, scalar ? 1 : c.dim,
                            c.group_size};
}

v1::QualitySummary SummaryOf(const Manifest& manifest) {
  QualityAccumulator acc;
  uint32_t tensors = 0;
  for (const ManifestTensor& t : manifest.tensors) {
    if (!t.quantized) continue;
    ++tensors;
    acc.Add(t.accounting.weights, t.quality.value_or(TensorQuality{}), t.accounting);
  }
  return acc.Summary(tensors);
}

}  // namespace

absl::StatusOr<v1::QualitySummary> WriteJobOutput(const v1::JobSpec& spec,
                                                  const std::vector<v1::Task>& tasks,
                                                  const SafetensorsModel& source,
                                                  const ResultLoader& load) {
  ASSIGN_OR_RETURN(const QuantizationConfig config, PackedConfig(spec));
  std::map<std::string, std::vector<TensorPart>> parts;  // by tensor, sorted
  std::map<std::string, int64_t> cols;
  for (const v1::Task& task : tasks) {
    ASSIGN_OR_RETURN(const CommittedResult r, load(task));
    ASSIGN_OR_RETURN(QuantizedTensor t, rpc::DecodeResult(task, r.header, r.payload));
    parts[task.tensor()].push_back({task.groups().first(), std::move(t), rpc::SumsOf(r.header)});
    cols[task.tensor()] = task.source().shape(1);
  }
  std::vector<QuantizedTensor> quantized;
  for (auto& [name, tensor_parts] : parts) {
    ASSIGN_OR_RETURN(QuantizedTensor t, AssembleTensor(std::move(tensor_parts), cols[name]));
    quantized.push_back(std::move(t));
  }
  // WritePackedModel re-opens and verifies the model before renaming it.
  RETURN_IF_ERROR(WritePackedModel(spec.output().path(), source, quantized, config));
  QualityAccumulator acc;
  for (const QuantizedTensor& t : quantized) {
    const BitsAccounting bits = ComputeAccounting(t);
    acc.Add(bits.weights, t.quality.value_or(TensorQuality{}), bits);
  }
  return acc.Summary(static_cast<uint32_t>(quantized.size()));
}

absl::StatusOr<v1::QualitySummary> VerifyExistingOutput(const std::string& dir) {
  ASSIGN_OR_RETURN(const PackedModel model, PackedModel::Open(dir));
  return SummaryOf(model.manifest());
}

}  // namespace glvq::coordinator
