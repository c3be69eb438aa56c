#include "coordinator/output_writer.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/packed/packed_model.h"
#include "common/rpc/result_codec.h"
#include "coordinator/assembler.h"
#include "coordinator/quality_summary.h"
#include "common/quant/packed_config.h"

namespace glvq::coordinator {
namespace {

// The model-wide description of the job's method in the packed format.
absl::StatusOr<QuantizationConfig> PackedConfig(const v1::JobSpec& spec) {
  ASSIGN_OR_RETURN(const quant::QuantizerConfig c, jobspec::ToQuantizerConfig(spec.quantizer()));
  return quant::PackedQuantizationConfig(c);
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

absl::Status AboutTask(const absl::Status& s, const v1::Task& task) {
  return absl::Status(s.code(), absl::StrCat("task ", task.id(), " (", task.tensor(),
                                             "): staged result: ", s.message()));
}

// The job's quantized tensors, each assembled from its staged ranges on
// demand; the last one is kept for the writer's next request.
class StagedTensors {
 public:
  StagedTensors(const std::vector<v1::Task>& tasks, const ResultLoader& load, OutputStats* stats)
      : load_(load), stats_(stats) {
    for (const v1::Task& task : tasks) ranges_[task.tensor()].push_back(&task);
  }

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [name, ranges] : ranges_) names.push_back(name);
    return names;
  }

  absl::StatusOr<const QuantizedTensor*> Load(const std::string& name) {
    if (loaded_ && loaded_->name == name) return &*loaded_;
    loaded_.reset();
    ASSIGN_OR_RETURN(QuantizedTensor t, Assemble(name));
    loaded_ = std::move(t);
    return &*loaded_;
  }

 private:
  absl::StatusOr<QuantizedTensor> Assemble(const std::string& name) {
    const auto it = ranges_.find(name);
    if (it == ranges_.end()) {
      return absl::InternalError(absl::StrCat("tensor '", name, "' is not in the plan"));
    }
    std::vector<TensorPart> parts;
    uint64_t held = 0, payload_bits = 0;
    for (const v1::Task* task : it->second) {
      absl::StatusOr<CommittedResult> r = load_(*task);
      if (!r.ok()) return AboutTask(r.status(), *task);
      absl::StatusOr<QuantizedTensor> t = rpc::DecodeResult(*task, r->header, r->payload);
      if (!t.ok()) return AboutTask(t.status(), *task);
      held += ComputeAccounting(*t).total_bits / 8;
      Note(held + r->payload.size());
      payload_bits += r->header.payload_bits();
      parts.push_back({task->groups().first(), *std::move(t), rpc::SumsOf(r->header)});
    }
    ASSIGN_OR_RETURN(QuantizedTensor out,
                     AssembleTensor(std::move(parts), it->second.front()->source().shape(1)));
    const BitsAccounting bits = ComputeAccounting(out);
    Note(held + bits.total_bits / 8);
    if (bits.payload_bits != payload_bits) {
      return absl::DataLossError(absl::StrCat(
          "tensor '", name, "': its committed ranges report ", payload_bits,
          " payload bits, the assembled tensor has ", bits.payload_bits));
    }
    if (stats_ != nullptr) ++stats_->tensor_loads;
    return out;
  }

  void Note(uint64_t bytes) {
    if (stats_ != nullptr) stats_->peak_tensor_bytes = std::max(stats_->peak_tensor_bytes, bytes);
  }

  std::map<std::string, std::vector<const v1::Task*>> ranges_;  // by tensor, plan order
  const ResultLoader& load_;
  OutputStats* stats_;
  std::optional<QuantizedTensor> loaded_;
};

}  // namespace

std::vector<std::pair<std::string, absl::Status>> FindDamagedResults(
    const std::vector<v1::Task>& tasks, const ResultLoader& load) {
  std::vector<std::pair<std::string, absl::Status>> damaged;
  for (const v1::Task& task : tasks) {
    if (absl::StatusOr<CommittedResult> r = load(task); !r.ok()) {
      damaged.emplace_back(task.id(), AboutTask(r.status(), task));
    }
  }
  return damaged;
}

absl::StatusOr<v1::QualitySummary> WriteJobOutput(const v1::JobSpec& spec,
                                                  const std::vector<v1::Task>& tasks,
                                                  const SafetensorsModel& source,
                                                  const ResultLoader& load, OutputStats* stats) {
  ASSIGN_OR_RETURN(const QuantizationConfig config, PackedConfig(spec));
  StagedTensors staged(tasks, load, stats);
  const QuantizedTensorLoader load_tensor = [&](const std::string& name) {
    return staged.Load(name);
  };
  // Verified (re-read) before it is renamed into place.
  ASSIGN_OR_RETURN(const Manifest manifest,
                   WritePackedModelStreamed(spec.output().path(), source, staged.Names(),
                                            load_tensor, config));
  return SummaryOf(manifest);
}

absl::StatusOr<v1::QualitySummary> VerifyExistingOutput(const std::string& dir) {
  ASSIGN_OR_RETURN(const PackedModel model, PackedModel::Open(dir));
  return SummaryOf(model.manifest());
}

}  // namespace glvq::coordinator
