// Calibration: the input Hessians H = XᵀX / N of every linear layer of a
// Llama model, accumulated in double over the tokens of a token file, and
// their on-disk form (docs/calibration.md).
//
// The layers that read the same input share one Hessian: q/k/v_proj read
// the attention block's normalised input, gate/up_proj the MLP's; o_proj
// and down_proj have their own.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/safetensors/reader.h"
#include "model/llama.h"
#include "model/output_aware.h"
#include "model/tokens.h"

namespace glvq::model {

// Tensor name of the Hessian of a layer's input, e.g.
// "model.layers.3.self_attn.input.hessian" (q/k/v), "...self_attn.o_proj.hessian",
// "...mlp.input.hessian" (gate/up), "...mlp.down_proj.hessian".
std::string HessianTensorName(int64_t layer, LinearInput input);
// The weights (tensor names) that read that input.
std::vector<std::string> WeightsReading(int64_t layer, LinearInput input);
// Its width: hidden size, heads · head_dim, or the MLP's intermediate size.
int64_t InputWidth(const LlamaConfig& config, LinearInput input);

// Σ xᵀx over the rows of one input, in double (each F32 product is exact
// in double; only the sums round), and the number of rows.
class GramAccumulator {
 public:
  explicit GramAccumulator(int64_t n) : sum_(Eigen::MatrixXd::Zero(n, n)) {}
  void Add(const RowMatrix& x);  // x: [rows, n]
  void Add(const GramAccumulator& other);
  int64_t rows() const { return rows_; }
  // XᵀX / N, exactly symmetric; zero if nothing was added.
  Eigen::MatrixXd Hessian() const;

 private:
  Eigen::MatrixXd sum_;  // lower triangle of Σ xᵀx
  int64_t rows_ = 0;
};

// A GramAccumulator for every linear-layer input it observes, and, when
// constructed with the model's weights, the output-aware Hessians
// (model/output_aware.h) as well.
class HessianAccumulator : public ActivationObserver {
 public:
  explicit HessianAccumulator(const LlamaConfig& config);
  // Output-aware too (q/k: `with_qk`); `weights` must outlive the accumulator.
  HessianAccumulator(const LlamaConfig& config, const LlamaWeights& weights, bool with_qk);
  void Observe(int64_t layer, LinearInput input, const RowMatrix& x) override;
  bool wants_attention() const override { return output_aware_.has_value(); }
  void ObserveAttention(int64_t layer, int64_t head, Eigen::Index first,
                        const RowMatrix& probs) override;
  bool wants_mlp_projections() const override { return output_aware_.has_value(); }
  void ObserveMlpProjections(int64_t layer, const RowMatrix& gate, const RowMatrix& up) override;
  // Hessians WriteHessians writes: 4 per layer, and one per layer for each
  // weight the output-aware sums cover.
  int64_t HessianCount() const;
  // The output-aware sums, or null.
  const OutputAwareAccumulator* output_aware() const {
    return output_aware_ ? &*output_aware_ : nullptr;
  }

  const LlamaConfig& config() const { return config_; }
  // Rows (tokens) seen by that input so far.
  int64_t rows(int64_t layer, LinearInput input) const { return grams_[Index(layer, input)].rows(); }
  // Adds `other`'s sums and row counts (same model shape).
  void Add(const HessianAccumulator& other);
  // XᵀX / N, exactly symmetric; zero if nothing was observed.
  Eigen::MatrixXd Hessian(int64_t layer, LinearInput input) const;

 private:
  size_t Index(int64_t layer, LinearInput input) const {
    return static_cast<size_t>(layer) * 4 + static_cast<size_t>(input);
  }
  LlamaConfig config_;
  std::vector<GramAccumulator> grams_;
  std::optional<OutputAwareAccumulator> output_aware_;
};

struct CalibrationOptions {
  int64_t batch_tokens = 4096;  // tokens per forward batch (see EvalOptions)
  // Batches run on this many threads, each with its own accumulator (so
  // memory for the sums × lanes); 1: the serial order.
  int lanes = 1;
  // Also the output-aware Hessians of v_proj and gate/up_proj
  // (model/output_aware.h); WriteHessians then maps those weights to them.
  // On by default: the best measured (docs/quality.md, "Output-aware
  // Hessians"); off gives plain XᵀX/N for every weight.
  bool output_aware = true;
  // With output_aware: q_proj and k_proj as well (costly; docs/quality.md).
  bool output_aware_qk = false;
};

// Runs `model` over `sequences` (every token counts, the last one too) and
// returns the accumulated sums.
absl::StatusOr<HessianAccumulator> Calibrate(const LlamaModel& model,
                                             std::span<const TokenSequence> sequences,
                                             const CalibrationOptions& options = {});

// Writes every Hessian as an F64 [n, n] tensor into `out_dir`, which must
// not exist (the directory appears complete or not at all): an ordinary
// safetensors model directory (model.safetensors, or shards and an index)
// whose __metadata__ maps every weight name to its Hessian's tensor name
// and records the token counts. `extra_metadata` is added (e.g. the inputs).
// With output-aware sums, the weights they cover map to their own tensors
// ("model.layers.3.self_attn.v_proj.hessian", ...) and "glvq.output_aware"
// lists those modules.
absl::Status WriteHessians(const std::filesystem::path& out_dir, const HessianAccumulator& h,
                           const std::map<std::string, std::string>& extra_metadata = {});

// A Hessian read back for one weight.
struct WeightHessian {
  std::string tensor;        // the Hessian's tensor name
  int64_t n = 0;             // width of the weight's input
  std::vector<double> data;  // n × n, row-major
};

// The Hessian of weight `weight_name` (e.g. "model.layers.0.self_attn.k_proj.weight")
// in a directory WriteHessians wrote, found through the metadata; nullopt if
// the metadata does not list the weight. F32 tensors are accepted as well.
// INVALID_ARGUMENT if the listed tensor is missing, not square or not float.
absl::StatusOr<std::optional<WeightHessian>> LoadHessianFor(const SafetensorsModel& hessians,
                                                            std::string_view weight_name);

}  // namespace glvq::model
