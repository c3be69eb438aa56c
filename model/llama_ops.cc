#include "model/llama_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace glvq::model {

RowMatrix Linear(const RowMatrix& x, const RowMatrix& w, const Eigen::VectorXf& b) {
  RowMatrix y(x.rows(), w.rows());
  y.noalias() = x * w.transpose();
  if (b.size() != 0) y.rowwise() += b.transpose();
  return y;
}

namespace {

// The concatenated head outputs [tokens, heads · head_dim] of one sequence
// occupying rows [first, first + length) of q, k, v.
void Attention(const LlamaConfig& c, const RowMatrix& q, const RowMatrix& k, const RowMatrix& v,
               Eigen::Index first, Eigen::Index length, RowMatrix& out,
               ActivationObserver* observer, int64_t layer) {
  const Eigen::Index d = c.head_dim;
  const int64_t group = c.num_heads / c.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  RowMatrix scores(length, length);
  for (int64_t h = 0; h < c.num_heads; ++h) {
    const Eigen::Index kv = (h / group) * d;
    scores.noalias() = q.block(first, h * d, length, d) * k.block(first, kv, length, d).transpose();
    scores *= scale;
    MaskedSoftmax(scores, 0, c.sliding_window);
    if (observer != nullptr) observer->ObserveAttention(layer, h, first, scores);
    out.block(first, h * d, length, d).noalias() =
        scores.triangularView<Eigen::Lower>() * v.block(first, kv, length, d);
  }
}


// HF's RMSNorm of one row vector `v` into `out`: v · rsqrt(mean(v²) + eps) ·
// weight, in F32. The one definition both norms below use.
template <typename In, typename Out>
void RmsNormRow(const In& v, const Eigen::VectorXf& weight, float eps, Out&& out) {
  const float inv_rms = 1.0f / std::sqrt(v.squaredNorm() / static_cast<float>(v.size()) + eps);
  out = (v * inv_rms).cwiseProduct(weight.transpose());
}

}  // namespace

void HeadRmsNorm(RowMatrix& x, const Eigen::VectorXf& weight, int64_t head_dim, double eps) {
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    for (Eigen::Index h = 0; h < x.cols(); h += head_dim) {
      auto head = x.block(r, h, 1, head_dim);
      RmsNormRow(head, weight, static_cast<float>(eps), head);
    }
  }
}

RowMatrix RmsNorm(const RowMatrix& x, const Eigen::VectorXf& weight, double eps) {
  RowMatrix y(x.rows(), x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    RmsNormRow(x.row(r), weight, static_cast<float>(eps), y.row(r));
  }
  return y;
}

namespace {

constexpr double kPi = 3.14159265358979323846;

// θ^(2i/d) in F32: transformers' pos_freqs, whose inverse is inv_freq.
float PositionFrequency(double theta, size_t i, int64_t head_dim) {
  const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
  return std::pow(static_cast<float>(theta), exponent);
}

// 1 / θ^(2i/d) in F32, i < d/2.
std::vector<float> PlainInverseFrequencies(double theta, int64_t head_dim) {
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < inv.size(); ++i) inv[i] = 1.0f / PositionFrequency(theta, i, head_dim);
  return inv;
}

void Llama3(const RopeScaling& s, std::vector<float>& inv) {
  const double original = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = original / s.low_freq_factor;
  const double high_wavelen = original / s.high_freq_factor;
  const auto factor = static_cast<float>(s.factor);
  for (float& f : inv) {
    const float wavelen = static_cast<float>(2 * kPi) / f;
    const float scaled = wavelen > low_wavelen ? f / factor : f;
    if (wavelen < high_wavelen || wavelen > low_wavelen) {
      f = scaled;
      continue;
    }
    const float smooth = static_cast<float>((original / wavelen - s.low_freq_factor) /
                                            (s.high_freq_factor - s.low_freq_factor));
    f = (1 - smooth) * scaled / factor + smooth * scaled;
  }
}

void Yarn(const RopeScaling& s, double theta, int64_t head_dim, std::vector<float>& inv) {
  const double dim = static_cast<double>(head_dim);
  const double original = static_cast<double>(s.original_max_position_embeddings);
  const auto correction_dim = [&](double rotations) {
    return dim * std::log(original / (rotations * 2 * kPi)) / (2 * std::log(theta));
  };
  double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
  if (s.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0);
  high = std::min(high, dim - 1);
  if (low == high) high += 0.001;
  const auto factor = static_cast<float>(s.factor);
  for (size_t i = 0; i < inv.size(); ++i) {
    const float pos_freq = PositionFrequency(theta, i, head_dim);
    const float extrapolation = 1.0f / pos_freq, interpolation = 1.0f / (factor * pos_freq);
    const float ramp = std::clamp(static_cast<float>((double(i) - low) / (high - low)), 0.0f, 1.0f);
    const float keep = 1 - ramp;  // the share of the extrapolated frequency
    inv[i] = interpolation * (1 - keep) + extrapolation * keep;
  }
}

}  // namespace

std::vector<float> RopeInverseFrequencies(const LlamaConfig& c, int64_t longest) {
  const RopeScaling& s = c.rope_scaling;
  double theta = c.rope_theta;
  if (s.type == RopeType::kDynamic) {
    const double max = static_cast<double>(c.max_position_embeddings);
    const double length = std::max(static_cast<double>(longest), max);
    const double d = static_cast<double>(c.head_dim);
    theta *= std::pow(s.factor * length / max - (s.factor - 1), d / (d - 2));
  }
  std::vector<float> inv = PlainInverseFrequencies(theta, c.head_dim);
  switch (s.type) {
    case RopeType::kLinear:
      for (float& f : inv) f /= static_cast<float>(s.factor);
      break;
    case RopeType::kLlama3: Llama3(s, inv); break;
    case RopeType::kYarn: Yarn(s, theta, c.head_dim, inv); break;
    default: break;
  }
  return inv;
}

RopeTable MakeRopeTable(int64_t positions, const LlamaConfig& c) {
  const std::vector<float> inv = RopeInverseFrequencies(c, positions);
  const auto half = static_cast<int64_t>(inv.size());
  const float scale =
      c.rope_scaling.type == RopeType::kYarn ? static_cast<float>(c.rope_scaling.attention_factor)
                                             : 1.0f;
  RopeTable t{RowMatrix(positions, half), RowMatrix(positions, half)};
  for (int64_t i = 0; i < half; ++i) {
    for (int64_t p = 0; p < positions; ++p) {
      const float angle = static_cast<float>(p) * inv[static_cast<size_t>(i)];
      t.cos(p, i) = static_cast<float>(std::cos(static_cast<double>(angle))) * scale;
      t.sin(p, i) = static_cast<float>(std::sin(static_cast<double>(angle))) * scale;
    }
  }
  return t;
}

void MaskedSoftmax(RowMatrix& scores, int64_t offset, int64_t window) {
  for (Eigen::Index i = 0; i < scores.rows(); ++i) {
    const Eigen::Index last = offset + i;
    const Eigen::Index first = window > 0 ? std::max<Eigen::Index>(0, last - window + 1) : 0;
    auto row = scores.row(i);
    auto seen = row.segment(first, last - first + 1);
    const float max = seen.maxCoeff();
    seen = (seen.array() - max).exp();
    seen /= seen.sum();
    row.head(first).setZero();
    row.tail(row.size() - last - 1).setZero();
  }
}

void ApplyRope(const RopeTable& rope, const std::vector<int64_t>& positions, int64_t head_dim,
               RowMatrix& x) {
  const int64_t half = head_dim / 2;
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const auto c = rope.cos.row(positions[r]);
    const auto s = rope.sin.row(positions[r]);
    for (Eigen::Index h = 0; h < x.cols(); h += head_dim) {
      float* v = x.row(r).data() + h;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c(i) - b * s(i);
        v[i + half] = b * c(i) + a * s(i);
      }
    }
  }
}

RowMatrix SwiGlu(const RowMatrix& gate, const RowMatrix& up) {
  return (gate.array() / (1.0f + (-gate.array()).exp()) * up.array()).matrix();
}

Qkv ProjectQkv(const LlamaConfig& c, const LlamaLayerWeights& w, const RowMatrix& x,
               const RopeTable& rope, const std::vector<int64_t>& positions) {
  Qkv out{Linear(x, w.q_proj, w.q_bias), Linear(x, w.k_proj, w.k_bias),
          Linear(x, w.v_proj, w.v_bias)};
  if (c.qk_norm) {
    HeadRmsNorm(out.q, w.q_norm, c.head_dim, c.rms_norm_eps);
    HeadRmsNorm(out.k, w.k_norm, c.head_dim, c.rms_norm_eps);
  }
  ApplyRope(rope, positions, c.head_dim, out.q);
  ApplyRope(rope, positions, c.head_dim, out.k);
  return out;
}

RowMatrix MlpHidden(const LlamaLayerWeights& w, const RowMatrix& x) {
  return SwiGlu(Linear(x, w.gate_proj, w.gate_bias), Linear(x, w.up_proj, w.up_bias));
}

RowMatrix Embed(const LlamaWeights& w, std::span<const TokenSequence> batch) {
  int64_t tokens = 0;
  for (const TokenSequence& seq : batch) tokens += static_cast<int64_t>(seq.size());
  RowMatrix x(static_cast<Eigen::Index>(tokens), w.embed_tokens.cols());
  Eigen::Index row = 0;
  for (const TokenSequence& seq : batch) {
    for (const int32_t id : seq) x.row(row++) = w.embed_tokens.row(id);
  }
  return x;
}

RowMatrix SelfAttention(const LlamaConfig& c, const LlamaLayerWeights& w, const RowMatrix& x,
                        std::span<const TokenSequence> batch, const RopeTable& rope,
                        const std::vector<int64_t>& positions, ActivationObserver* observer,
                        int64_t layer) {
  if (observer != nullptr && !observer->wants_attention()) observer = nullptr;
  const Qkv qkv = ProjectQkv(c, w, x, rope, positions);
  RowMatrix out(x.rows(), c.q_dim());
  Eigen::Index first = 0;
  for (const TokenSequence& seq : batch) {
    const auto length = static_cast<Eigen::Index>(seq.size());
    Attention(c, qkv.q, qkv.k, qkv.v, first, length, out, observer, layer);
    first += length;
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> BatchPositions(std::span<const TokenSequence> batch,
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

}  // namespace glvq::model
