// A Llama model whose quantized linear layers are GainLinear (fixed decoded
// weights between tunable gains) and whose RMSNorm weights are tunable, with
// the gradient of KL(teacher ‖ model) over one token sequence: the forward
// pass of llama.cc, kept on a tape, and its exact backward pass. Embeddings
// and lm_head are frozen. What finetune.h tunes.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/gain_linear.h"
#include "model/llama.h"

namespace glvq::model {

// The order of a layer's linear layers in TunableLayer::linears.
enum LinearSlot { kQ, kK, kV, kO, kGate, kUp, kDown, kNumLinearSlots };
// Their Hugging Face names within a layer ("self_attn.q_proj", …).
const char* LinearSlotName(int slot);
// The [rows, cols] of the weight in `slot` for config `c`.
std::array<int64_t, 2> LinearSlotShape(const LlamaConfig& c, int slot);
// The dense weight in `slot` of a layer.
template <typename Layer>  // LlamaLayerWeights, const or not
auto& LinearSlotWeight(Layer& w, int slot) {
  decltype(&w.q_proj) all[kNumLinearSlots] = {&w.q_proj,    &w.k_proj,  &w.v_proj,   &w.o_proj,
                                              &w.gate_proj, &w.up_proj, &w.down_proj};
  return *all[slot];
}

struct TunableLayer {
  std::array<GainLinear, kNumLinearSlots> linears;
  Eigen::VectorXf input_layernorm, post_attention_layernorm;
};

struct TunableLlama {
  LlamaConfig config;
  RowMatrix embed_tokens;  // [vocab, hidden], frozen
  RowMatrix lm_head;       // [vocab, hidden] or empty when tied; frozen
  std::vector<TunableLayer> layers;
  Eigen::VectorXf norm;  // the final RMSNorm

  // INVALID_ARGUMENT unless the shapes match `config`; UNIMPLEMENTED for
  // what the backward pass does not cover (Qwen3's per-head q/k norms).
  absl::Status Check() const;
  // The model as LlamaWeights (every linear made dense), for LlamaModel.
  LlamaWeights DenseWeights() const;
};

// dL/d(every tunable parameter), in double; sized by Resize.
struct TunableGrad {
  struct Layer {
    std::array<GainLinearGrad, kNumLinearSlots> linears;
    Eigen::VectorXd input_layernorm, post_attention_layernorm;
  };
  std::vector<Layer> layers;
  Eigen::VectorXd norm;

  void Resize(const TunableLlama& m);
  void Add(const TunableGrad& other);
  void Scale(double s);
};

// Mean over the positions of `sequence` of KL(p ‖ q), p the distribution
// whose log-probabilities are the rows of `teacher_log_probs` [tokens, vocab]
// and q = softmax of `m`'s next-token logits; adds its gradient to `grad`.
// The sequence must be non-empty with ids in the vocabulary (INVALID_ARGUMENT).
absl::StatusOr<double> KlGradient(const TunableLlama& m, const TokenSequence& sequence,
                                  const RowMatrix& teacher_log_probs, TunableGrad& grad);

// Row-wise log-softmax of logits [tokens, vocab], in place.
void LogSoftmaxRows(RowMatrix& logits);

}  // namespace glvq::model
