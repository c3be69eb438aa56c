#include "model/calibration.h"

#include <algorithm>
#include <cstddef>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/safetensors/writer.h"
#include "common/tensor/dtype.h"
#include "model/eval.h"
#include "common/base/parallel.h"

namespace glvq::model {
namespace {

using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// What a consumer needs to interpret the file, beside the weight → tensor map.
constexpr char kFormatKey[] = "glvq.format";
constexpr char kFormat[] = "glvq-hessians";
constexpr char kFormatVersionKey[] = "glvq.format_version";
constexpr Eigen::Index kRowsPerUpdate = 512;

std::string LayerPrefix(int64_t layer) { return absl::StrCat("model.layers.", layer, "."); }

std::span<const std::byte> Bytes(const RowMatrixD& m) {
  return std::as_bytes(std::span<const double>(m.data(), static_cast<size_t>(m.size())));
}

}  // namespace

std::string HessianTensorName(int64_t layer, LinearInput input) {
  const char* suffix = "";
  switch (input) {
    case LinearInput::kAttention:
      suffix = "self_attn.input.hessian";
      break;
    case LinearInput::kAttentionOutput:
      suffix = "self_attn.o_proj.hessian";
      break;
    case LinearInput::kMlp:
      suffix = "mlp.input.hessian";
      break;
    case LinearInput::kMlpHidden:
      suffix = "mlp.down_proj.hessian";
      break;
  }
  return absl::StrCat(LayerPrefix(layer), suffix);
}

std::vector<std::string> WeightsReading(int64_t layer, LinearInput input) {
  std::vector<const char*> names;
  switch (input) {
    case LinearInput::kAttention:
      names = {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"};
      break;
    case LinearInput::kAttentionOutput:
      names = {"self_attn.o_proj.weight"};
      break;
    case LinearInput::kMlp:
      names = {"mlp.gate_proj.weight", "mlp.up_proj.weight"};
      break;
    case LinearInput::kMlpHidden:
      names = {"mlp.down_proj.weight"};
      break;
  }
  std::vector<std::string> weights;
  for (const char* name : names) weights.push_back(absl::StrCat(LayerPrefix(layer), name));
  return weights;
}

int64_t InputWidth(const LlamaConfig& config, LinearInput input) {
  switch (input) {
    case LinearInput::kAttention:
    case LinearInput::kMlp:
      return config.hidden_size;
    case LinearInput::kAttentionOutput:
      return config.q_dim();
    case LinearInput::kMlpHidden:
      return config.intermediate_size;
  }
  return 0;
}

void GramAccumulator::Add(const RowMatrix& x) {
  // Symmetric rank-k updates (SYRK) fill only the lower triangle; chunks of
  // rows bound the double copy (a 28672-wide input is 229 KB per row).
  for (Eigen::Index first = 0; first < x.rows(); first += kRowsPerUpdate) {
    const Eigen::Index n = std::min<Eigen::Index>(kRowsPerUpdate, x.rows() - first);
    const Eigen::MatrixXd xd = x.middleRows(first, n).cast<double>();
    sum_.selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
  }
  rows_ += x.rows();
}

void GramAccumulator::Add(const GramAccumulator& other) {
  sum_ += other.sum_;
  rows_ += other.rows_;
}

Eigen::MatrixXd GramAccumulator::Hessian() const {
  Eigen::MatrixXd h = sum_.selfadjointView<Eigen::Lower>();
  if (rows_ > 0) h /= static_cast<double>(rows_);
  return h;
}

HessianAccumulator::HessianAccumulator(const LlamaConfig& config) : config_(config) {
  for (int64_t l = 0; l < config.num_layers; ++l) {
    for (LinearInput input : kLinearInputs) grams_.emplace_back(InputWidth(config, input));
  }
}

HessianAccumulator::HessianAccumulator(const LlamaConfig& config, const LlamaWeights& weights,
                                       bool with_qk)
    : HessianAccumulator(config) {
  output_aware_.emplace(config, weights, with_qk);
}

void HessianAccumulator::Observe(int64_t layer, LinearInput input, const RowMatrix& x) {
  grams_[Index(layer, input)].Add(x);
  if (output_aware_) output_aware_->Observe(layer, input, x);
}

void HessianAccumulator::ObserveAttention(int64_t layer, int64_t head, Eigen::Index first,
                                          const RowMatrix& probs) {
  if (output_aware_) output_aware_->ObserveAttention(layer, head, first, probs);
}

void HessianAccumulator::ObserveMlpProjections(int64_t layer, const RowMatrix& gate,
                                               const RowMatrix& up) {
  if (output_aware_) output_aware_->ObserveMlpProjections(layer, gate, up);
}

void HessianAccumulator::Add(const HessianAccumulator& other) {
  for (size_t i = 0; i < grams_.size(); ++i) grams_[i].Add(other.grams_[i]);
  if (output_aware_ && other.output_aware_) output_aware_->Add(*other.output_aware_);
}

int64_t HessianAccumulator::HessianCount() const {
  const size_t aware = output_aware_ ? output_aware_->Covered().size() : 0;
  return config_.num_layers * static_cast<int64_t>(std::size(kLinearInputs) + aware);
}

Eigen::MatrixXd HessianAccumulator::Hessian(int64_t layer, LinearInput input) const {
  return grams_[Index(layer, input)].Hessian();
}

absl::StatusOr<HessianAccumulator> Calibrate(const LlamaModel& model,
                                             std::span<const TokenSequence> sequences,
                                             const CalibrationOptions& options) {
  // Lane l takes batches l, l + lanes, ...; the lanes' sums are added in
  // lane order, so the result depends on the lane count (in the last bits
  // of the sums), never on timing.
  const auto batches = MakeBatches(sequences, options.batch_tokens);
  const int lanes = std::max(1, options.lanes);
  const HessianAccumulator empty = options.output_aware
                                       ? HessianAccumulator(model.config(), model.weights(),
                                                            options.output_aware_qk)
                                       : HessianAccumulator(model.config());
  std::vector<HessianAccumulator> acc(static_cast<size_t>(lanes), empty);
  std::vector<absl::Status> status(acc.size());
  ParallelFor(lanes, lanes, [&](int64_t l) {
    for (size_t b = static_cast<size_t>(l); b < batches.size(); b += acc.size()) {
      status[l] = model.Hidden(batches[b], &acc[l]).status();
      if (!status[l].ok()) return;
    }
  });
  for (const absl::Status& s : status) RETURN_IF_ERROR(s);
  for (size_t l = 1; l < acc.size(); ++l) acc[0].Add(acc[l]);
  return std::move(acc[0]);
}

absl::Status WriteHessians(const std::filesystem::path& out_dir, const HessianAccumulator& h,
                           const std::map<std::string, std::string>& extra_metadata) {
  const LlamaConfig& c = h.config();
  std::map<std::string, std::string> metadata = extra_metadata;
  metadata[kFormatKey] = std::string(kFormat);
  metadata[kFormatVersionKey] = std::string("1");
  std::vector<RowMatrixD> matrices;  // owns the bytes the tensors point to
  const std::vector<OutputAwareWeight> covered =
      h.output_aware() != nullptr ? h.output_aware()->Covered() : std::vector<OutputAwareWeight>();
  matrices.reserve(static_cast<size_t>(h.HessianCount()));  // no reallocation: tensors point in
  std::vector<TensorToWrite> tensors;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    for (LinearInput input : kLinearInputs) {
      const std::string name = HessianTensorName(l, input);
      matrices.emplace_back(h.Hessian(l, input));
      const int64_t n = matrices.back().rows();
      tensors.push_back({name, DType::kF64, {n, n}, Bytes(matrices.back())});
      for (const std::string& weight : WeightsReading(l, input)) metadata[weight] = name;
    }
    for (const OutputAwareWeight w : covered) {
      const std::string module = absl::StrCat(LayerPrefix(l), OutputAwareModule(w));
      matrices.emplace_back(h.output_aware()->Hessian(l, w));
      const int64_t n = matrices.back().rows();
      tensors.push_back({module + ".hessian", DType::kF64, {n, n}, Bytes(matrices.back())});
      metadata[module + ".weight"] = module + ".hessian";
    }
  }
  if (h.output_aware() != nullptr) {
    std::vector<std::string> modules;
    for (const OutputAwareWeight w : covered) modules.push_back(OutputAwareModule(w));
    metadata["glvq.output_aware"] = absl::StrJoin(modules, ",");
  }
  metadata["glvq.tokens"] = absl::StrCat(c.num_layers > 0 ? h.rows(0, LinearInput::kAttention) : 0);
  return WriteDirectoryAtomically(out_dir, [&](const std::filesystem::path& tmp) {
    RETURN_IF_ERROR(WriteSafetensorsModel(tmp, tensors, metadata));
    return SafetensorsModel::Open(tmp).status();
  });
}

absl::StatusOr<std::optional<WeightHessian>> LoadHessianFor(const SafetensorsModel& hessians,
                                                            std::string_view weight_name) {
  const auto it = hessians.metadata().find(std::string(weight_name));
  if (it == hessians.metadata().end()) return std::optional<WeightHessian>();
  const std::string& tensor = it->second;
  const std::string where =
      absl::StrCat(hessians.directory().string(), ": Hessian ", tensor, " of ", Sv(weight_name));
  const TensorEntry* e = hessians.Find(tensor);
  if (e == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, " is missing"));
  if (e->shape.size() != 2 || e->shape[0] != e->shape[1]) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " has shape ", ShapeToString(e->shape), ", not [n, n]"));
  }
  if (e->dtype != DType::kF64 && !IsFloatDType(e->dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " is ", DTypeName(e->dtype), ", not a float tensor"));
  }
  ASSIGN_OR_RETURN(const TensorView view, hessians.Get(tensor));
  WeightHessian out{tensor, e->shape[0],
                    std::vector<double>(static_cast<size_t>(view.NumElements()))};
  RETURN_IF_ERROR(ConvertToF64(view.dtype, view.data, out.data));
  return std::optional<WeightHessian>(std::move(out));
}

}  // namespace glvq::model
