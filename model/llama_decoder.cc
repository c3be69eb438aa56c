#include "model/llama_decoder.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace glvq::model {

LlamaDecoder::LlamaDecoder(const LlamaModel& model, int64_t sequences, int64_t max_length)
    : model_(model),
      sequences_(sequences),
      max_length_(max_length),
      rope_(MakeRopeTable(max_length, model.config())),
      keys_(static_cast<size_t>(model.config().num_layers),
            RowMatrix(sequences * max_length, model.config().kv_dim())),
      values_(keys_) {}

RowMatrix LlamaDecoder::Attend(int64_t layer, const RowMatrix& q, const RowMatrix& k,
                               const RowMatrix& v) {
  const LlamaConfig& c = model_.config();
  const Eigen::Index d = c.head_dim, t = length_ + 1;
  const int64_t group = c.num_heads / c.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  RowMatrix& keys = keys_[static_cast<size_t>(layer)];
  RowMatrix& values = values_[static_cast<size_t>(layer)];
  RowMatrix out(sequences_, c.q_dim());
  RowMatrix scores(1, t);
  for (int64_t s = 0; s < sequences_; ++s) {
    const Eigen::Index first = s * max_length_;
    keys.row(first + length_) = k.row(s);
    values.row(first + length_) = v.row(s);
    for (int64_t h = 0; h < c.num_heads; ++h) {
      const Eigen::Index kv = (h / group) * d;
      // As Forward's causal softmax does for its last row.
      scores.noalias() = q.block(s, h * d, 1, d) * keys.block(first, kv, t, d).transpose();
      scores *= scale;
      MaskedSoftmax(scores, t - 1, c.sliding_window);
      out.block(s, h * d, 1, d).noalias() = scores * values.block(first, kv, t, d);
    }
  }
  return out;
}

absl::StatusOr<RowMatrix> LlamaDecoder::Step(std::span<const int32_t> tokens) {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  if (static_cast<int64_t>(tokens.size()) != sequences_) {
    return absl::InvalidArgumentError(
        absl::StrCat("decoder step: ", tokens.size(), " tokens for ", sequences_, " sequences"));
  }
  if (length_ >= max_length_) {
    return absl::InvalidArgumentError(
        absl::StrCat("decoder step: the sequences already have ", max_length_, " tokens"));
  }
  RowMatrix x(sequences_, c.hidden_size);
  for (int64_t s = 0; s < sequences_; ++s) {
    const int32_t id = tokens[static_cast<size_t>(s)];
    if (id < 0 || id >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is outside the vocabulary [0, ", c.vocab_size, ")"));
    }
    x.row(s) = w.embed_tokens.row(id);
  }
  const std::vector<int64_t> positions(static_cast<size_t>(sequences_), length_);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LlamaLayerWeights& lw = w.layers[static_cast<size_t>(l)];
    const RowMatrix attn_in = RmsNorm(x, lw.input_layernorm, c.rms_norm_eps);
    const Qkv qkv = ProjectQkv(c, lw, attn_in, rope_, positions);
    x += Linear(Attend(l, qkv.q, qkv.k, qkv.v), lw.o_proj, lw.o_bias);
    const RowMatrix mlp_in = RmsNorm(x, lw.post_attention_layernorm, c.rms_norm_eps);
    x += Linear(MlpHidden(lw, mlp_in), lw.down_proj, lw.down_bias);
  }
  ++length_;
  return model_.Logits(RmsNorm(x, w.norm, c.rms_norm_eps));
}

}  // namespace glvq::model
