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

// The concatenated head outputs [tokens, heads · head_dim] of one sequence
// occupying rows [first, first + length) of q, k, v.
void Attention(const LlamaConfig& c, const RowMatrix& q, const RowMatrix& k, const RowMatrix& v,
               Eigen::Index first, Eigen::Index length, RowMatrix& out) {
  const Eigen::Index d = c.head_dim;
  const int64_t group = c.num_heads / c.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  RowMatrix scores(length, length);
  for (int64_t h = 0; h < c.num_heads; ++h) {
    const Eigen::Index kv = (h / group) * d;
    scores.noalias() = q.block(first, h * d, length, d) * k.block(first, kv, length, d).transpose();
    scores *= scale;
    MaskedSoftmax(scores, 0, c.sliding_window);
    out.block(first, h * d, length, d).noalias() =
        scores.triangularView<Eigen::Lower>() * v.block(first, kv, length, d);
  }
}

RowMatrix SelfAttention(const LlamaConfig& c, const LlamaLayerWeights& w, const RowMatrix& x,
                        std::span<const TokenSequence> batch, const RopeTable& rope,
                        const std::vector<int64_t>& positions) {
  const Qkv qkv = ProjectQkv(c, w, x, rope, positions);
  RowMatrix out(x.rows(), c.q_dim());
  Eigen::Index first = 0;
  for (const TokenSequence& seq : batch) {
    const auto length = static_cast<Eigen::Index>(seq.size());
    Attention(c, qkv.q, qkv.k, qkv.v, first, length, out);
    first += length;
  }
  return out;
}

// The position of every token of the batch within its sequence;
// INVALID_ARGUMENT for an empty sequence or an id outside the vocabulary.
absl::StatusOr<std::vector<int64_t>> Positions(std::span<const TokenSequence> batch,
                                               int64_t vocab_size) {
  std::vector<int64_t> positions;
  for (const TokenSequence& seq : batch) {
    if (seq.empty()) return absl::InvalidArgumentError("empty token sequence");
    for (size_t p = 0; p < seq.size(); ++p) {
      if (seq[p] < 0 || seq[p] >= vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", seq[p], " is outside the vocabulary [0, ", vocab_size, ")"));
      }
      positions.push_back(static_cast<int64_t>(p));
    }
  }
  return positions;
}

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
  const RowMatrix heads = SelfAttention(ctx.config, w, attn_in, ctx.batch, ctx.rope, ctx.positions);
  ctx.Observe(layer, LinearInput::kAttentionOutput, heads);
  x += Linear(heads, w.o_proj, w.o_bias);
  const RowMatrix mlp_in = RmsNorm(x, w.post_attention_layernorm, eps);
  ctx.Observe(layer, LinearInput::kMlp, mlp_in);
  const RowMatrix act = MlpHidden(w, mlp_in);
  ctx.Observe(layer, LinearInput::kMlpHidden, act);
  x += Linear(act, w.down_proj, w.down_bias);
}

}  // namespace

absl::StatusOr<RowMatrix> LlamaModel::Hidden(std::span<const TokenSequence> batch,
                                             ActivationObserver* observer) const {
  const LlamaConfig& c = config_;
  ASSIGN_OR_RETURN(const std::vector<int64_t> positions, Positions(batch, c.vocab_size));
  RowMatrix x(static_cast<Eigen::Index>(positions.size()), c.hidden_size);
  Eigen::Index row = 0;
  for (const TokenSequence& seq : batch) {
    for (const int32_t id : seq) x.row(row++) = weights_.embed_tokens.row(id);
  }
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
