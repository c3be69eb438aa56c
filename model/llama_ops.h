// The building blocks of a Llama decoder layer, in F32 and in the order
// Hugging Face computes them: shared by the batched forward pass
// (llama.cc) and the incremental decoder (llama_decoder.cc), so both
// compute the same function.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

#include "model/llama.h"

namespace glvq::model {

// x · Wᵀ (+ b on every row, if b is not empty) for row-major activations
// x [tokens, in], weights W [out, in] and bias b [out].
RowMatrix Linear(const RowMatrix& x, const RowMatrix& w,
                 const Eigen::VectorXf& b = Eigen::VectorXf());

// RmsNorm over each head_dim-wide head of x [tokens, heads · head_dim] with
// the one weight [head_dim] (Qwen3's q_norm / k_norm), in place.
void HeadRmsNorm(RowMatrix& x, const Eigen::VectorXf& weight, int64_t head_dim, double eps);

// HF LlamaRMSNorm: x · rsqrt(mean(x²) + eps), then times the weight.
RowMatrix RmsNorm(const RowMatrix& x, const Eigen::VectorXf& weight, double eps);

// cos and sin of the rotary angles, [position, head_dim / 2], both already
// multiplied by the scaling's attention factor (yarn; 1 otherwise).
struct RopeTable {
  RowMatrix cos, sin;
};
// The inverse frequencies [head_dim / 2] of c's RoPE and its scaling
// (LlamaConfig's RopeType), in F32 as transformers computes them, for a
// batch whose longest sequence has `longest` tokens (only `dynamic` uses it).
std::vector<float> RopeInverseFrequencies(const LlamaConfig& c, int64_t longest);
// The table for positions [0, positions). The angles are formed in F32
// exactly as HF does (inv_freq in F32 times the position in F32) so that
// long sequences match it.
RopeTable MakeRopeTable(int64_t positions, const LlamaConfig& c);

// Rotate-half RoPE on every head of x [tokens, heads · head_dim]; token r
// is at position positions[r] (< the table's positions).
void ApplyRope(const RopeTable& rope, const std::vector<int64_t>& positions, int64_t head_dim,
               RowMatrix& x);

// Row-wise softmax of scores [queries, keys] where query i sits at key
// position `offset` + i and may see keys (offset + i − window, offset + i]
// (all up to offset + i if window is 0); other entries become 0.
void MaskedSoftmax(RowMatrix& scores, int64_t offset, int64_t window);

// silu(gate) · up, element-wise.
RowMatrix SwiGlu(const RowMatrix& gate, const RowMatrix& up);

// A decoder layer's attention inputs from its normalised input x: q, k
// and v projections (with biases), q/k head norms where the config has
// them, and RoPE at `positions` on q and k.
struct Qkv {
  RowMatrix q, k, v;
};
Qkv ProjectQkv(const LlamaConfig& c, const LlamaLayerWeights& w, const RowMatrix& x,
               const RopeTable& rope, const std::vector<int64_t>& positions);

// The concatenated head outputs [tokens, heads · head_dim] of causal
// self-attention over each sequence of `batch` (rows in batch order) for
// the normalised input x. With an `observer` that wants_attention(), each
// head's probabilities are passed to it as layer `layer`'s.
RowMatrix SelfAttention(const LlamaConfig& c, const LlamaLayerWeights& w, const RowMatrix& x,
                        std::span<const TokenSequence> batch, const RopeTable& rope,
                        const std::vector<int64_t>& positions,
                        ActivationObserver* observer = nullptr, int64_t layer = 0);

// The position of every token of the batch within its sequence;
// INVALID_ARGUMENT for an empty sequence or an id outside [0, vocab_size).
absl::StatusOr<std::vector<int64_t>> BatchPositions(std::span<const TokenSequence> batch,
                                                    int64_t vocab_size);

// The embedded batch [tokens, hidden], one row per token in batch order;
// ids must be valid (BatchPositions checks them).
RowMatrix Embed(const LlamaWeights& w, std::span<const TokenSequence> batch);

// The MLP's hidden activation silu(x·gateᵀ + b) · (x·upᵀ + b), the input
// of down_proj, for the normalised input x.
RowMatrix MlpHidden(const LlamaLayerWeights& w, const RowMatrix& x);

}  // namespace glvq::model
