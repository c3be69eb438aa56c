// A CPU forward pass of Llama-architecture checkpoints in F32, with Hugging
// Face LlamaForCausalLM semantics: RMSNorm, rotate-half RoPE over each head
// (with Llama 3's and the other rope_scaling types), grouped-query causal
// attention (optionally a sliding window, Mistral), SwiGLU MLP, tied or
// separate lm_head; the biases of Qwen2 and Llama's attention_bias/mlp_bias,
// and Qwen3's per-head q/k RMSNorm.
//
// A batch is several token sequences of any lengths. Their tokens are
// stacked into one matrix so that every linear layer is one GEMM over all of
// them; attention stays within each sequence.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "model/llama_config.h"
#include "model/tokens.h"

namespace glvq::model {

// Row-major like the checkpoints: row r of a weight is output feature r.
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct LlamaLayerWeights {
  RowMatrix q_proj, k_proj, v_proj, o_proj;  // [out, in]
  RowMatrix gate_proj, up_proj, down_proj;
  Eigen::VectorXf input_layernorm, post_attention_layernorm;
  // Present only where the config says (LlamaConfig's switches); else empty.
  Eigen::VectorXf q_bias, k_bias, v_bias, o_bias;  // [out]
  Eigen::VectorXf gate_bias, up_bias, down_bias;   // [out]
  Eigen::VectorXf q_norm, k_norm;                  // [head_dim] (Qwen3)
};

struct LlamaWeights {
  RowMatrix embed_tokens;  // [vocab, hidden]
  std::vector<LlamaLayerWeights> layers;
  Eigen::VectorXf norm;  // final RMSNorm
  RowMatrix lm_head;     // [vocab, hidden]; empty when tied to embed_tokens
};

// The four distinct inputs of a decoder layer's linear layers.
enum class LinearInput {
  kAttention,        // RMSNorm'd hidden state: q_proj, k_proj, v_proj
  kAttentionOutput,  // concatenated head outputs: o_proj
  kMlp,              // RMSNorm'd hidden state: gate_proj, up_proj
  kMlpHidden,        // silu(gate) * up: down_proj
};
inline constexpr LinearInput kLinearInputs[] = {LinearInput::kAttention,
                                                LinearInput::kAttentionOutput, LinearInput::kMlp,
                                                LinearInput::kMlpHidden};

// Sees the input of every linear layer during a forward pass (calibration).
class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // `x` has one row per token of the batch, in batch order.
  virtual void Observe(int64_t layer, LinearInput input, const RowMatrix& x) = 0;

  // Whether the forward pass should call ObserveAttention (it costs a call
  // per head and sequence).
  virtual bool wants_attention() const { return false; }
  // The attention probabilities of query head `head` over one sequence of
  // the batch, whose tokens are rows [first, first + probs.rows()) of the
  // layer's input: row i holds the weights of keys 0…i (zeros elsewhere).
  // Called after Observe(layer, kAttention) and before
  // Observe(layer, kAttentionOutput).
  virtual void ObserveAttention(int64_t /*layer*/, int64_t /*head*/, Eigen::Index /*first*/,
                                const RowMatrix& /*probs*/) {}
  // The MLP's gate and up projections (biases included) of the batch,
  // before silu(gate) · up; called after Observe(layer, kMlp) only when
  // wants_mlp_projections() is true.
  virtual bool wants_mlp_projections() const { return false; }
  virtual void ObserveMlpProjections(int64_t /*layer*/, const RowMatrix& /*gate*/,
                                     const RowMatrix& /*up*/) {}
};

class LlamaModel {
 public:
  // An original checkpoint: config.json plus safetensors (single or sharded)
  // in F32, F16 or BF16, converted to F32.
  static absl::StatusOr<LlamaModel> LoadSafetensors(const std::filesystem::path& dir);
  // A glvq packed model; quantized weights are decoded with the reference
  // decoder (DequantizeRef) on load.
  static absl::StatusOr<LlamaModel> LoadPacked(const std::filesystem::path& dir);
  // INVALID_ARGUMENT unless every weight has the shape `config` implies.
  static absl::StatusOr<LlamaModel> FromWeights(const LlamaConfig& config, LlamaWeights weights);

  const LlamaConfig& config() const { return config_; }
  const LlamaWeights& weights() const { return weights_; }

  // Final hidden states (after the last RMSNorm), one row per token of the
  // batch. INVALID_ARGUMENT for an empty sequence or an id outside the
  // vocabulary.
  absl::StatusOr<RowMatrix> Hidden(std::span<const TokenSequence> batch,
                                   ActivationObserver* observer = nullptr) const;
  // Next-token logits [tokens, vocab] of Hidden's rows.
  RowMatrix Logits(const RowMatrix& hidden) const;
  absl::StatusOr<RowMatrix> Forward(std::span<const TokenSequence> batch) const;

 private:
  LlamaModel(LlamaConfig config, LlamaWeights weights)
      : config_(config), weights_(std::move(weights)) {}

  LlamaConfig config_;
  LlamaWeights weights_;
};

}  // namespace glvq::model
