// The forward pass. Every step is computed in F32 in the order Hugging Face
// computes it, so results agree with the reference to F32 rounding.
#include "model/llama.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "model/llama_ops.h"

namespace glvq::model {
namespace {

// What one decoder layer needs besides its weights.
struct LayerContext {
  const LlamaConfig& config;
  std::span<const TokenSequence> batch;
  const std::vector<int64_t>& positions;
  const RopeTable& rope;
  ActivationObserver* observer;  // may be null

  void Observe(int64_t layer, LinearInput input, const RowMatrix& x) const {
    if (observer != nullptr) observer->Observe(layer, input, x);
  }
};

// x += attention(norm(x)); x += mlp(norm(x)).
void DecoderLayer(const LayerContext& ctx, int64_t layer, const LlamaLayerWeights& w,
                  RowMatrix& x) {
  const double eps = ctx.config.rms_norm_eps;
  const RowMatrix attn_in = RmsNorm(x, w.input_layernorm, eps);
  ctx.Observe(layer, LinearInput::kAttention, attn_in);
  const RowMatrix heads =
      SelfAttention(ctx.config, w, attn_in, ctx.batch, ctx.rope, ctx.positions, ctx.observer, layer);
  ctx.Observe(layer, LinearInput::kAttentionOutput, heads);
  x += Linear(heads, w.o_proj, w.o_bias);
  const RowMatrix mlp_in = RmsNorm(x, w.post_attention_layernorm, eps);
  ctx.Observe(layer, LinearInput::kMlp, mlp_in);
  // MlpHidden's steps, spelled out so that an observer can see gate and up.
  const RowMatrix gate = Linear(mlp_in, w.gate_proj, w.gate_bias);
  const RowMatrix up = Linear(mlp_in, w.up_proj, w.up_bias);
  if (ctx.observer != nullptr && ctx.observer->wants_mlp_projections()) {
    ctx.observer->ObserveMlpProjections(layer, gate, up);
  }
  const RowMatrix act = SwiGlu(gate, up);
  ctx.Observe(layer, LinearInput::kMlpHidden, act);
  x += Linear(act, w.down_proj, w.down_bias);
}

}  // namespace

absl::StatusOr<RowMatrix> LlamaModel::Hidden(std::span<const TokenSequence> batch,
                                             ActivationObserver* observer) const {
  const LlamaConfig& c = config_;
  ASSIGN_OR_RETURN(const std::vector<int64_t> positions, BatchPositions(batch, c.vocab_size));
  RowMatrix x = Embed(weights_, batch);
  const int64_t longest = *std::max_element(positions.begin(), positions.end()) + 1;
  const RopeTable rope = MakeRopeTable(longest, c);
  const LayerContext ctx{c, batch, positions, rope, observer};
  for (int64_t l = 0; l < c.num_layers; ++l) {
    DecoderLayer(ctx, l, weights_.layers[static_cast<size_t>(l)], x);
  }
  return RmsNorm(x, weights_.norm, c.rms_norm_eps);
}

RowMatrix LlamaModel::Logits(const RowMatrix& hidden) const {
  const bool tied = weights_.lm_head.size() == 0;
  return Linear(hidden, tied ? weights_.embed_tokens : weights_.lm_head);
}

absl::StatusOr<RowMatrix> LlamaModel::Forward(std::span<const TokenSequence> batch) const {
  ASSIGN_OR_RETURN(const RowMatrix hidden, Hidden(batch));
  return Logits(hidden);
}

}  // namespace glvq::model
