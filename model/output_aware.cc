#include "model/output_aware.h"

#include <cmath>

#include "model/llama_ops.h"

namespace glvq::model {
namespace {

// ‖block‖² of each consecutive `width` columns of w, normalised to sum 1.
Eigen::VectorXf ColumnBlockWeights(const RowMatrix& w, int64_t width) {
  const int64_t blocks = w.cols() / width;
  Eigen::VectorXf out(blocks);
  for (int64_t b = 0; b < blocks; ++b) out(b) = w.middleCols(b * width, width).squaredNorm();
  const float total = out.sum();
  if (total > 0) out /= total;
  return out;
}

// Σ_t c_t x_t x_tᵀ into sums (c ≥ 0 per row of x).
void AddWeighted(const RowMatrix& x, const Eigen::VectorXf& c, Eigen::MatrixXd& sum) {
  const Eigen::MatrixXd xs = (x.array().colwise() * c.array().sqrt()).matrix().cast<double>();
  sum.noalias() += xs.transpose() * xs;
}

}  // namespace

const char* OutputAwareModule(OutputAwareWeight w) {
  switch (w) {
    case OutputAwareWeight::kVProj:
      return "self_attn.v_proj";
    case OutputAwareWeight::kGateProj:
      return "mlp.gate_proj";
    case OutputAwareWeight::kUpProj:
      return "mlp.up_proj";
  }
  return "";
}

OutputAwareAccumulator::OutputAwareAccumulator(const LlamaConfig& config,
                                               const LlamaWeights& weights)
    : config_(config), weights_(&weights) {
  const int64_t n = config.hidden_size;
  for (int64_t l = 0; l < config.num_layers * 3; ++l)
    sums_.push_back({Eigen::MatrixXd::Zero(n, n), 0});
  for (const LlamaLayerWeights& w : weights.layers) {
    head_weight_.push_back(ColumnBlockWeights(w.o_proj, config.head_dim));
    down_weight_.push_back(ColumnBlockWeights(w.down_proj, 1));
  }
}

void OutputAwareAccumulator::Observe(int64_t layer, LinearInput input, const RowMatrix& x) {
  switch (input) {
    case LinearInput::kAttention:
      attention_input_ = x;
      mixing_.clear();
      break;
    case LinearInput::kAttentionOutput:
      FlushAttention(layer);
      break;
    case LinearInput::kMlp:
      ObserveMlp(layer, x);
      break;
    case LinearInput::kMlpHidden:
      break;
  }
}

void OutputAwareAccumulator::ObserveAttention(int64_t layer, int64_t head, Eigen::Index first,
                                              const RowMatrix& probs) {
  Eigen::MatrixXf& m = mixing_[first];
  if (m.size() == 0) m = Eigen::MatrixXf::Zero(probs.rows(), probs.cols());
  const float alpha = head_weight_[static_cast<size_t>(layer)](head);
  m.noalias() += alpha * (probs.transpose() * probs);
}

void OutputAwareAccumulator::FlushAttention(int64_t layer) {
  // Σ_h α_h z_hᵀ z_h with z_h = P_h X equals Xᵀ (Σ_h α_h P_hᵀ P_h) X.
  Sums& s = At(layer, OutputAwareWeight::kVProj);
  for (const auto& [first, m] : mixing_) {
    const Eigen::MatrixXd x = attention_input_.middleRows(first, m.rows()).cast<double>();
    s.sum.noalias() += x.transpose() * (m.cast<double>() * x);
    s.rows += m.rows();
  }
  mixing_.clear();
}

void OutputAwareAccumulator::ObserveMlp(int64_t layer, const RowMatrix& x) {
  const LlamaLayerWeights& w = weights_->layers[static_cast<size_t>(layer)];
  const RowMatrix g = Linear(x, w.gate_proj, w.gate_bias);
  const RowMatrix u = Linear(x, w.up_proj, w.up_bias);
  const auto sigmoid = (1.0f + (-g.array()).exp()).inverse();
  const Eigen::ArrayXXf silu = g.array() * sigmoid;
  const Eigen::ArrayXXf dsilu = sigmoid * (1.0f + g.array() * (1.0f - sigmoid));
  const Eigen::VectorXf& wr = down_weight_[static_cast<size_t>(layer)];
  const Eigen::VectorXf c_up = silu.square().matrix() * wr;
  const Eigen::VectorXf c_gate = (u.array() * dsilu).square().matrix() * wr;
  Sums& up = At(layer, OutputAwareWeight::kUpProj);
  Sums& gate = At(layer, OutputAwareWeight::kGateProj);
  AddWeighted(x, c_up, up.sum);
  AddWeighted(x, c_gate, gate.sum);
  up.rows += x.rows();
  gate.rows += x.rows();
}

void OutputAwareAccumulator::Add(const OutputAwareAccumulator& other) {
  for (size_t i = 0; i < sums_.size(); ++i) {
    sums_[i].sum += other.sums_[i].sum;
    sums_[i].rows += other.sums_[i].rows;
  }
}

Eigen::MatrixXd OutputAwareAccumulator::Hessian(int64_t layer, OutputAwareWeight w) const {
  const Sums& s = At(layer, w);
  Eigen::MatrixXd h = (s.sum + s.sum.transpose()) / 2;
  if (s.rows > 0) h /= static_cast<double>(s.rows);
  return h;
}

}  // namespace glvq::model
