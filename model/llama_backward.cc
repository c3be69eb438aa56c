// Backward pass: every step of llama.cc's forward pass (as HF computes it)
// in reverse. Activations are F32 as in the forward pass; parameter
// gradients are summed in double.
#include "model/llama_backward.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "model/llama_ops.h"

namespace glvq::model {
namespace {

constexpr const char* kSlotNames[kNumLinearSlots] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

// What the backward pass of one decoder layer needs from its forward pass.
struct LayerTape {
  RowMatrix x_in, x_mid;  // the residual stream entering attention and the MLP
  std::array<GainLinearTape, kNumLinearSlots> linears;
  RowMatrix q, k, v;             // q and k after RoPE
  std::vector<RowMatrix> probs;  // per query head [tokens, tokens]
  RowMatrix gate, up;
};

// dL/dx of HF's RMSNorm y = x · r · w, r = (mean(x²) + eps)^(-1/2), for
// dL/dy `dy`; adds dL/dw to `dw`.
RowMatrix RmsNormBackward(const RowMatrix& x, const Eigen::VectorXf& w, double eps,
                          const RowMatrix& dy, Eigen::VectorXd& dw) {
  RowMatrix dx(x.rows(), x.cols());
  const auto n = static_cast<float>(x.cols());
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const float r = 1.0f / std::sqrt(x.row(t).squaredNorm() / n + static_cast<float>(eps));
    const Eigen::RowVectorXf g = dy.row(t).cwiseProduct(w.transpose());
    dw += (dy.row(t).cwiseProduct(x.row(t)) * r).transpose().cast<double>();
    dx.row(t) = g * r - x.row(t) * (r * r * r * g.dot(x.row(t)) / n);
  }
  return dx;
}

// The RoPE table's transpose: rotation by the negated angles.
RopeTable Transposed(const RopeTable& t) { return RopeTable{t.cos, -t.sin}; }

// Causal attention of one sequence (all rows), keeping each head's weights.
RowMatrix AttentionForward(const LlamaConfig& c, LayerTape& tape) {
  const Eigen::Index d = c.head_dim, n = tape.q.rows();
  const int64_t group = c.num_heads / c.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  RowMatrix out(n, c.q_dim());
  tape.probs.assign(static_cast<size_t>(c.num_heads), RowMatrix());
  for (int64_t h = 0; h < c.num_heads; ++h) {
    const Eigen::Index kv = (h / group) * d;
    RowMatrix& p = tape.probs[static_cast<size_t>(h)];
    p.noalias() = tape.q.middleCols(h * d, d) * tape.k.middleCols(kv, d).transpose();
    p *= scale;
    MaskedSoftmax(p, 0, c.sliding_window);
    out.middleCols(h * d, d).noalias() = p * tape.v.middleCols(kv, d);
  }
  return out;
}

// dL/dq, dL/dk, dL/dv (q and k after RoPE) for dL/d(head outputs) `d_out`.
void AttentionBackward(const LlamaConfig& c, const LayerTape& tape, const RowMatrix& d_out,
                       RowMatrix& dq, RowMatrix& dk, RowMatrix& dv) {
  const Eigen::Index d = c.head_dim, n = tape.q.rows();
  const int64_t group = c.num_heads / c.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  dq = RowMatrix::Zero(n, c.q_dim());
  dk = RowMatrix::Zero(n, c.kv_dim());
  dv = RowMatrix::Zero(n, c.kv_dim());
  RowMatrix dp(n, n);
  for (int64_t h = 0; h < c.num_heads; ++h) {
    const Eigen::Index kv = (h / group) * d;
    const RowMatrix& p = tape.probs[static_cast<size_t>(h)];
    const auto d_head = d_out.middleCols(h * d, d);
    dv.middleCols(kv, d).noalias() += p.transpose() * d_head;
    dp.noalias() = d_head * tape.v.middleCols(kv, d).transpose();
    // Softmax: dS = P ⊙ (dP − rowsum(dP ⊙ P)); masked entries have P = 0.
    const Eigen::VectorXf row_dot = dp.cwiseProduct(p).rowwise().sum();
    dp = p.cwiseProduct(dp.colwise() - row_dot) * scale;
    dq.middleCols(h * d, d).noalias() = dp * tape.k.middleCols(kv, d);
    dk.middleCols(kv, d).noalias() += dp.transpose() * tape.q.middleCols(h * d, d);
  }
}

float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void LayerForward(const LlamaConfig& c, const TunableLayer& w, const RopeTable& rope,
                  const std::vector<int64_t>& positions, RowMatrix& x, LayerTape& tape) {
  auto& lt = tape.linears;
  tape.x_in = x;
  const RowMatrix attn_in = RmsNorm(x, w.input_layernorm, c.rms_norm_eps);
  tape.q = Forward(w.linears[kQ], attn_in, &lt[kQ]);
  tape.k = Forward(w.linears[kK], attn_in, &lt[kK]);
  tape.v = Forward(w.linears[kV], attn_in, &lt[kV]);
  ApplyRope(rope, positions, c.head_dim, tape.q);
  ApplyRope(rope, positions, c.head_dim, tape.k);
  x += Forward(w.linears[kO], AttentionForward(c, tape), &lt[kO]);
  tape.x_mid = x;
  const RowMatrix mlp_in = RmsNorm(x, w.post_attention_layernorm, c.rms_norm_eps);
  tape.gate = Forward(w.linears[kGate], mlp_in, &lt[kGate]);
  tape.up = Forward(w.linears[kUp], mlp_in, &lt[kUp]);
  x += Forward(w.linears[kDown], SwiGlu(tape.gate, tape.up), &lt[kDown]);
}

// dx ← dL/d(layer input) for dL/d(layer output) `dx`.
void LayerBackward(const LlamaConfig& c, const TunableLayer& w, const LayerTape& tape,
                   const RopeTable& rope_t, const std::vector<int64_t>& positions, RowMatrix& dx,
                   TunableGrad::Layer& g) {
  const auto& lt = tape.linears;
  auto& gl = g.linears;
  // MLP: x_out = x_mid + down(silu(gate) · up).
  const RowMatrix d_act = Backward(w.linears[kDown], lt[kDown], dx, gl[kDown]);
  RowMatrix d_gate(d_act.rows(), d_act.cols()), d_up(d_act.rows(), d_act.cols());
  for (Eigen::Index i = 0; i < d_act.size(); ++i) {
    const float z = tape.gate.data()[i], s = Sigmoid(z), da = d_act.data()[i];
    d_up.data()[i] = da * z * s;
    d_gate.data()[i] = da * tape.up.data()[i] * s * (1 + z * (1 - s));
  }
  RowMatrix d_mlp_in = Backward(w.linears[kGate], lt[kGate], d_gate, gl[kGate]);
  d_mlp_in += Backward(w.linears[kUp], lt[kUp], d_up, gl[kUp]);
  dx += RmsNormBackward(tape.x_mid, w.post_attention_layernorm, c.rms_norm_eps, d_mlp_in,
                        g.post_attention_layernorm);
  // Attention: x_mid = x_in + o(attention(rope(q), rope(k), v)).
  const RowMatrix d_heads = Backward(w.linears[kO], lt[kO], dx, gl[kO]);
  RowMatrix dq, dk, dv;
  AttentionBackward(c, tape, d_heads, dq, dk, dv);
  ApplyRope(rope_t, positions, c.head_dim, dq);
  ApplyRope(rope_t, positions, c.head_dim, dk);
  RowMatrix d_attn_in = Backward(w.linears[kQ], lt[kQ], dq, gl[kQ]);
  d_attn_in += Backward(w.linears[kK], lt[kK], dk, gl[kK]);
  d_attn_in += Backward(w.linears[kV], lt[kV], dv, gl[kV]);
  dx += RmsNormBackward(tape.x_in, w.input_layernorm, c.rms_norm_eps, d_attn_in, g.input_layernorm);
}

absl::Status CheckLinear(const GainLinear& l, int64_t rows, int64_t cols, const std::string& what) {
  const bool ok = l.rows() == rows && l.cols() == cols && l.group_size > 0 &&
                  l.log_row_gain.size() == rows &&
                  l.log_group_gain.size() == (cols + l.group_size - 1) / l.group_size &&
                  (l.bias.size() == 0 || l.bias.size() == rows);
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": expected a ", rows, "x", cols, " weight with matching gains and bias"));
}

}  // namespace

const char* LinearSlotName(int slot) { return kSlotNames[slot]; }

std::array<int64_t, 2> LinearSlotShape(const LlamaConfig& c, int slot) {
  const int64_t h = c.hidden_size, m = c.intermediate_size;
  const std::array<int64_t, 2> shapes[kNumLinearSlots] = {
      {c.q_dim(), h}, {c.kv_dim(), h}, {c.kv_dim(), h}, {h, c.q_dim()}, {m, h}, {m, h}, {h, m}};
  return shapes[slot];
}

absl::Status TunableLlama::Check() const {
  const LlamaConfig& c = config;
  if (c.qk_norm) {
    return absl::UnimplementedError("fine-tuning does not cover per-head q/k norms (Qwen3)");
  }
  if (static_cast<int64_t>(layers.size()) != c.num_layers || embed_tokens.rows() != c.vocab_size ||
      embed_tokens.cols() != c.hidden_size || norm.size() != c.hidden_size ||
      (!c.tie_word_embeddings &&
       (lm_head.rows() != c.vocab_size || lm_head.cols() != c.hidden_size))) {
    return absl::InvalidArgumentError(
        "tunable model: layers, embeddings or norm do not match config");
  }
  const int64_t h = c.hidden_size;
  for (size_t l = 0; l < layers.size(); ++l) {
    for (int s = 0; s < kNumLinearSlots; ++s) {
      const auto [rows, cols] = LinearSlotShape(c, s);
      RETURN_IF_ERROR(CheckLinear(layers[l].linears[s], rows, cols,
                                  absl::StrCat("layer ", l, " ", kSlotNames[s])));
    }
    if (layers[l].input_layernorm.size() != h || layers[l].post_attention_layernorm.size() != h) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", l, ": norm size is not ", h));
    }
  }
  return absl::OkStatus();
}

LlamaWeights TunableLlama::DenseWeights() const {
  LlamaWeights w;
  w.embed_tokens = embed_tokens;
  w.lm_head = lm_head;
  w.norm = norm;
  for (const TunableLayer& t : layers) {
    LlamaLayerWeights lw;
    Eigen::VectorXf* bias[kNumLinearSlots] = {&lw.q_bias,    &lw.k_bias,  &lw.v_bias,   &lw.o_bias,
                                              &lw.gate_bias, &lw.up_bias, &lw.down_bias};
    for (int s = 0; s < kNumLinearSlots; ++s) {
      LinearSlotWeight(lw, s) = t.linears[s].Dense();
      *bias[s] = t.linears[s].bias;
    }
    lw.input_layernorm = t.input_layernorm;
    lw.post_attention_layernorm = t.post_attention_layernorm;
    w.layers.push_back(std::move(lw));
  }
  return w;
}

void TunableGrad::Resize(const TunableLlama& m) {
  layers.assign(m.layers.size(), Layer());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    for (int s = 0; s < kNumLinearSlots; ++s) layers[l].linears[s].Resize(m.layers[l].linears[s]);
    layers[l].input_layernorm = Eigen::VectorXd::Zero(m.config.hidden_size);
    layers[l].post_attention_layernorm = Eigen::VectorXd::Zero(m.config.hidden_size);
  }
  norm = Eigen::VectorXd::Zero(m.config.hidden_size);
}

void TunableGrad::Add(const TunableGrad& o) {
  for (size_t l = 0; l < layers.size(); ++l) {
    for (int s = 0; s < kNumLinearSlots; ++s) {
      layers[l].linears[s].log_row_gain += o.layers[l].linears[s].log_row_gain;
      layers[l].linears[s].log_group_gain += o.layers[l].linears[s].log_group_gain;
    }
    layers[l].input_layernorm += o.layers[l].input_layernorm;
    layers[l].post_attention_layernorm += o.layers[l].post_attention_layernorm;
  }
  norm += o.norm;
}

void TunableGrad::Scale(double f) {
  for (Layer& layer : layers) {
    for (GainLinearGrad& g : layer.linears) {
      g.log_row_gain *= f;
      g.log_group_gain *= f;
    }
    layer.input_layernorm *= f;
    layer.post_attention_layernorm *= f;
  }
  norm *= f;
}

void LogSoftmaxRows(RowMatrix& logits) {
  for (Eigen::Index t = 0; t < logits.rows(); ++t) {
    auto row = logits.row(t);
    const float max = row.maxCoeff();
    const double sum = (row.array() - max).exp().cast<double>().sum();
    row.array() -= max + static_cast<float>(std::log(sum));
  }
}

absl::StatusOr<double> KlGradient(const TunableLlama& m, const TokenSequence& sequence,
                                  const RowMatrix& teacher_log_probs, TunableGrad& grad) {
  const LlamaConfig& c = m.config;
  const TokenSequence* one = &sequence;
  ASSIGN_OR_RETURN(const std::vector<int64_t> positions,
                   BatchPositions(std::span<const TokenSequence>(one, 1), c.vocab_size));
  const auto n = static_cast<Eigen::Index>(sequence.size());
  if (teacher_log_probs.rows() != n || teacher_log_probs.cols() != c.vocab_size) {
    return absl::InvalidArgumentError("teacher log-probabilities do not match the sequence");
  }
  const RopeTable rope = MakeRopeTable(n, c);
  RowMatrix x(n, c.hidden_size);
  for (Eigen::Index t = 0; t < n; ++t)
    x.row(t) = m.embed_tokens.row(sequence[static_cast<size_t>(t)]);
  std::vector<LayerTape> tapes(m.layers.size());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    LayerForward(c, m.layers[l], rope, positions, x, tapes[l]);
  }
  const RowMatrix& head = m.lm_head.size() != 0 ? m.lm_head : m.embed_tokens;
  const RowMatrix hidden = RmsNorm(x, m.norm, c.rms_norm_eps);
  RowMatrix log_q = Linear(hidden, head);
  LogSoftmaxRows(log_q);
  // KL and dKL/dlogits = (q − p) / n for the mean over positions.
  double kl = 0;
  RowMatrix d_logits(n, c.vocab_size);
  for (Eigen::Index t = 0; t < n; ++t) {
    for (Eigen::Index v = 0; v < c.vocab_size; ++v) {
      const float lp = teacher_log_probs(t, v), lq = log_q(t, v), p = std::exp(lp);
      kl += static_cast<double>(p) * (lp - lq);
      d_logits(t, v) = (std::exp(lq) - p) / static_cast<float>(n);
    }
  }
  RowMatrix dx(n, c.hidden_size);
  dx.noalias() = d_logits * head;
  dx = RmsNormBackward(x, m.norm, c.rms_norm_eps, dx, grad.norm);
  const RopeTable rope_t = Transposed(rope);
  for (size_t l = m.layers.size(); l-- > 0;) {
    LayerBackward(c, m.layers[l], tapes[l], rope_t, positions, dx, grad.layers[l]);
  }
  return kl / static_cast<double>(n);
}

}  // namespace glvq::model
