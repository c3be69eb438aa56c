#include "model/sequential.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/parallel.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "common/quant/packed_config.h"
#include "model/calibration.h"
#include "model/eval.h"
#include "model/llama.h"
#include "model/llama_ops.h"
#include "worker/engine/quantizer.h"

namespace glvq::model {
namespace {

// One calibration batch as it flows through the layers.
struct Stream {
  std::span<const TokenSequence> batch;
  std::vector<int64_t> positions;
  RopeTable rope;
  RowMatrix x;  // the residual stream [tokens, hidden]
};

// Quantizes the weights `targets` (all reading one input with Hessian `h`)
// side by side and replaces each with its decoded form; the packed tensors
// go to `quantized`.
absl::Status QuantizeInPlace(const quant::QuantizerConfig& config, const Eigen::MatrixXd& h,
                             const std::vector<std::pair<std::string, RowMatrix*>>& targets,
                             std::vector<QuantizedTensor>& quantized) {
  quant::QuantizerConfig one = config;
  one.threads = targets.size() > 1 ? 1 : config.threads;
  ASSIGN_OR_RETURN(const auto quantizer, engine::MakeQuantizer(one));
  const engine::HessianView hv{h.data(), h.rows()};  // symmetric: either storage order
  std::vector<absl::StatusOr<quant::QuantizeResult>> results(targets.size(),
                                                             absl::UnknownError("not run"));
  ParallelFor(static_cast<int64_t>(targets.size()), config.threads, [&](int64_t i) {
    const RowMatrix& w = *targets[i].second;
    results[i] = quantizer->Quantize(targets[i].first, {w.data(), w.rows(), w.cols()}, &hv);
  });
  for (size_t i = 0; i < targets.size(); ++i) {
    RETURN_IF_ERROR(results[i].status());
    RowMatrix& w = *targets[i].second;
    w = Eigen::Map<const RowMatrix>(results[i]->dequantized.data(), w.rows(), w.cols());
    quantized.push_back(std::move(results[i]->tensor));
  }
  return absl::OkStatus();
}

// XᵀX / N over the rows of every matrix of `xs`.
Eigen::MatrixXd HessianOf(const std::vector<RowMatrix>& xs) {
  GramAccumulator gram(xs.front().cols());
  for (const RowMatrix& x : xs) gram.Add(x);
  return gram.Hessian();
}

// Quantizes decoder layer `l` (its weights `w`, replaced by their decoded
// forms) on the streams, and advances the streams through it.
absl::Status QuantizeLayer(const LlamaConfig& c, const quant::QuantizerConfig& config, int64_t l,
                           LlamaLayerWeights& w, std::vector<Stream>& streams,
                           std::vector<QuantizedTensor>& quantized) {
  const double eps = c.rms_norm_eps;
  std::vector<RowMatrix> in;  // the current input, one matrix per stream
  auto targets = [&](LinearInput input, std::vector<RowMatrix*> weights) {
    std::vector<std::pair<std::string, RowMatrix*>> t;
    const std::vector<std::string> names = WeightsReading(l, input);
    for (size_t i = 0; i < names.size(); ++i) t.emplace_back(names[i], weights[i]);
    return t;
  };
  for (Stream& s : streams) in.push_back(RmsNorm(s.x, w.input_layernorm, eps));
  RETURN_IF_ERROR(QuantizeInPlace(
      config, HessianOf(in),
      targets(LinearInput::kAttention, {&w.q_proj, &w.k_proj, &w.v_proj}), quantized));
  for (size_t b = 0; b < streams.size(); ++b) {
    const Stream& s = streams[b];
    in[b] = SelfAttention(c, w, in[b], s.batch, s.rope, s.positions);
  }
  RETURN_IF_ERROR(QuantizeInPlace(config, HessianOf(in),
                                  targets(LinearInput::kAttentionOutput, {&w.o_proj}), quantized));
  for (size_t b = 0; b < streams.size(); ++b) {
    streams[b].x += Linear(in[b], w.o_proj, w.o_bias);
    in[b] = RmsNorm(streams[b].x, w.post_attention_layernorm, eps);
  }
  RETURN_IF_ERROR(QuantizeInPlace(
      config, HessianOf(in), targets(LinearInput::kMlp, {&w.gate_proj, &w.up_proj}), quantized));
  for (RowMatrix& x : in) x = MlpHidden(w, x);
  RETURN_IF_ERROR(QuantizeInPlace(config, HessianOf(in),
                                  targets(LinearInput::kMlpHidden, {&w.down_proj}), quantized));
  for (size_t b = 0; b < streams.size(); ++b) streams[b].x += Linear(in[b], w.down_proj, w.down_bias);
  return absl::OkStatus();
}

}  // namespace

absl::Status QuantizeModelSequential(const std::filesystem::path& model_dir,
                                     const std::filesystem::path& out,
                                     const quant::QuantizerConfig& config,
                                     std::span<const TokenSequence> calibration,
                                     const SequentialOptions& options) {
  RETURN_IF_ERROR(quant::ValidateConfig(config));
  if (calibration.empty()) return absl::InvalidArgumentError("no calibration sequences");
  ASSIGN_OR_RETURN(const SafetensorsModel source, SafetensorsModel::Open(model_dir));
  ASSIGN_OR_RETURN(LlamaModel original, LlamaModel::LoadSafetensors(model_dir));
  const LlamaConfig& c = original.config();
  std::vector<Stream> streams;
  for (std::span<const TokenSequence> batch : MakeBatches(calibration, options.batch_tokens)) {
    Stream s{batch, {}, {}, {}};
    ASSIGN_OR_RETURN(s.positions, BatchPositions(batch, c.vocab_size));
    int64_t longest = 0;
    for (const TokenSequence& seq : batch) longest = std::max<int64_t>(longest, seq.size());
    s.rope = MakeRopeTable(longest, c);
    s.x = Embed(original.weights(), batch);
    streams.push_back(std::move(s));
  }
  std::vector<QuantizedTensor> quantized;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LlamaLayerWeights w = original.weights().layers[static_cast<size_t>(l)];
    RETURN_IF_ERROR(QuantizeLayer(c, config, l, w, streams, quantized));
  }
  return WritePackedModel(out, source, quantized, quant::PackedQuantizationConfig(config));
}

}  // namespace glvq::model
