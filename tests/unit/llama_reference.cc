#include "tests/unit/llama_reference.h"

#include <cmath>

#include "common/base/random.h"

namespace glvq::testing {
namespace {

using Vec = std::vector<double>;

Vec MatVec(const model::RowMatrix& w, const Vec& x) {
  Vec y(static_cast<size_t>(w.rows()), 0.0);
  for (Eigen::Index r = 0; r < w.rows(); ++r) {
    for (Eigen::Index j = 0; j < w.cols(); ++j) y[r] += static_cast<double>(w(r, j)) * x[j];
  }
  return y;
}

Vec Norm(const Vec& x, const Eigen::VectorXf& g, double eps) {
  double ms = 0;
  for (double v : x) ms += v * v;
  const double inv = 1.0 / std::sqrt(ms / static_cast<double>(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g(static_cast<Eigen::Index>(i));
  return y;
}

// Rotates pairs (i, i + d/2) of every head by pos · θ^(−2i/d).
void Rope(Vec& x, int64_t d, int64_t pos, double theta) {
  for (size_t h = 0; h < x.size(); h += static_cast<size_t>(d)) {
    for (int64_t i = 0; i < d / 2; ++i) {
      const double angle = static_cast<double>(pos) /
                           std::pow(theta, 2.0 * static_cast<double>(i) / static_cast<double>(d));
      double& a = x[h + i];
      double& b = x[h + i + d / 2];
      const double a0 = a, b0 = b;
      a = a0 * std::cos(angle) - b0 * std::sin(angle);
      b = b0 * std::cos(angle) + a0 * std::sin(angle);
    }
  }
}

// Causal grouped-query attention output of position t; each head's weights
// are appended to probs[head].
Vec Attend(const model::LlamaConfig& c, const Rows& q, const Rows& k, const Rows& v, size_t t,
           std::vector<Rows>& probs) {
  const auto d = static_cast<size_t>(c.head_dim);
  Vec out(static_cast<size_t>(c.q_dim()), 0.0);
  for (int64_t h = 0; h < c.num_heads; ++h) {
    const size_t qo = static_cast<size_t>(h) * d;
    const size_t ko = static_cast<size_t>(h / (c.num_heads / c.num_kv_heads)) * d;
    Vec p(t + 1);
    double max = -1e300, sum = 0;
    for (size_t j = 0; j <= t; ++j) {
      double s = 0;
      for (size_t i = 0; i < d; ++i) s += q[t][qo + i] * k[j][ko + i];
      p[j] = s / std::sqrt(static_cast<double>(d));
      max = std::max(max, p[j]);
    }
    for (double& x : p) sum += (x = std::exp(x - max));
    for (double& x : p) x /= sum;
    for (size_t j = 0; j <= t; ++j) {
      for (size_t i = 0; i < d; ++i) out[qo + i] += p[j] * v[j][ko + i];
    }
    probs[static_cast<size_t>(h)].push_back(p);
  }
  return out;
}

void Add(Vec& x, const Vec& y) {
  for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

}  // namespace

ReferenceRun ReferenceForward(const model::LlamaConfig& c, const model::LlamaWeights& w,
                              const model::TokenSequence& seq) {
  const size_t n = seq.size();
  Rows x(n);
  for (size_t t = 0; t < n; ++t) {
    for (Eigen::Index j = 0; j < c.hidden_size; ++j) x[t].push_back(w.embed_tokens(seq[t], j));
  }
  ReferenceRun run;
  for (const model::LlamaLayerWeights& l : w.layers) {
    std::array<Rows, 4>& in = run.inputs.emplace_back();
    Rows q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      in[0].push_back(Norm(x[t], l.input_layernorm, c.rms_norm_eps));
      q[t] = MatVec(l.q_proj, in[0][t]);
      k[t] = MatVec(l.k_proj, in[0][t]);
      v[t] = MatVec(l.v_proj, in[0][t]);
      Rope(q[t], c.head_dim, static_cast<int64_t>(t), c.rope_theta);
      Rope(k[t], c.head_dim, static_cast<int64_t>(t), c.rope_theta);
    }
    run.qkv.push_back({q, k, v});
    std::vector<Rows>& probs = run.probs.emplace_back(static_cast<size_t>(c.num_heads));
    for (size_t t = 0; t < n; ++t) in[1].push_back(Attend(c, q, k, v, t, probs));
    for (size_t t = 0; t < n; ++t) {
      Add(x[t], MatVec(l.o_proj, in[1][t]));
      in[2].push_back(Norm(x[t], l.post_attention_layernorm, c.rms_norm_eps));
      const Vec g = MatVec(l.gate_proj, in[2][t]), u = MatVec(l.up_proj, in[2][t]);
      Vec act(g.size());
      for (size_t i = 0; i < g.size(); ++i) act[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      in[3].push_back(act);
      Add(x[t], MatVec(l.down_proj, act));
    }
  }
  const model::RowMatrix& head = c.tie_word_embeddings ? w.embed_tokens : w.lm_head;
  for (size_t t = 0; t < n; ++t)
    run.logits.push_back(MatVec(head, Norm(x[t], w.norm, c.rms_norm_eps)));
  return run;
}

model::LlamaConfig TinyConfig(bool tied) {
  model::LlamaConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 4;
  c.vocab_size = 37;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500.0;
  c.tie_word_embeddings = tied;
  return c;
}

namespace {
model::RowMatrix Gaussian(Rng& rng, int64_t rows, int64_t cols, double scale) {
  model::RowMatrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i)
    m.data()[i] = static_cast<float>(scale * rng.Normal());
  return m;
}

Eigen::VectorXf NearOne(Rng& rng, int64_t n) {
  Eigen::VectorXf v(n);
  for (Eigen::Index i = 0; i < n; ++i) v(i) = static_cast<float>(1.0 + 0.2 * rng.Normal());
  return v;
}
}  // namespace

model::LlamaWeights RandomWeights(const model::LlamaConfig& c, uint64_t seed) {
  Rng rng(seed);
  const int64_t h = c.hidden_size, m = c.intermediate_size;
  const double sh = 1.0 / std::sqrt(static_cast<double>(h));
  model::LlamaWeights w;
  w.embed_tokens = Gaussian(rng, c.vocab_size, h, 1.0);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    model::LlamaLayerWeights& L = w.layers.emplace_back();
    L.q_proj = Gaussian(rng, c.q_dim(), h, sh);
    L.k_proj = Gaussian(rng, c.kv_dim(), h, sh);
    L.v_proj = Gaussian(rng, c.kv_dim(), h, sh);
    L.o_proj = Gaussian(rng, h, c.q_dim(), 1.0 / std::sqrt(static_cast<double>(c.q_dim())));
    L.gate_proj = Gaussian(rng, m, h, sh);
    L.up_proj = Gaussian(rng, m, h, sh);
    L.down_proj = Gaussian(rng, h, m, 1.0 / std::sqrt(static_cast<double>(m)));
    L.input_layernorm = NearOne(rng, h);
    L.post_attention_layernorm = NearOne(rng, h);
  }
  w.norm = NearOne(rng, h);
  if (!c.tie_word_embeddings) w.lm_head = Gaussian(rng, c.vocab_size, h, sh);
  return w;
}

}  // namespace glvq::testing
