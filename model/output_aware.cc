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

// Σ_t c_t x_t x_tᵀ added to sum (c ≥ 0 per row of x). One sequence's
// products in float (a batch of at most a few thousand tokens; the
// weighting is itself an approximation), accumulated across batches in
// double.
void AddWeighted(const RowMatrix& x, const Eigen::VectorXf& c, Eigen::MatrixXd& sum) {
  const RowMatrix xs = (x.array().colwise() * c.array().sqrt()).matrix();
  sum += (xs.transpose() * xs).cast<double>();
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
    case OutputAwareWeight::kQProj:
      return "self_attn.q_proj";
    case OutputAwareWeight::kKProj:
      return "self_attn.k_proj";
  }
  return "";
}

OutputAwareAccumulator::OutputAwareAccumulator(const LlamaConfig& config,
                                               const LlamaWeights& weights, bool with_qk)
    : config_(config), weights_(&weights), with_qk_(with_qk && !config.qk_norm) {
  const int64_t n = config.hidden_size;
  for (int64_t l = 0; l < config.num_layers * static_cast<int64_t>(kOutputAwareCount); ++l)
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
      probs_.clear();
      break;
    case LinearInput::kAttentionOutput:
      FlushAttention(layer);
      break;
    case LinearInput::kMlp:
      mlp_input_ = x;
      break;
    case LinearInput::kMlpHidden:
      break;
  }
}

void OutputAwareAccumulator::ObserveAttention(int64_t /*layer*/, int64_t head, Eigen::Index first,
                                              const RowMatrix& probs) {
  std::vector<RowMatrix>& heads = probs_[first];
  heads.resize(static_cast<size_t>(config_.num_heads));
  heads[static_cast<size_t>(head)] = probs;
}

void OutputAwareAccumulator::FlushAttention(int64_t layer) {
  for (const auto& [first, heads] : probs_) AddSequence(layer, first, heads);
  probs_.clear();
}

// One sequence's contribution to the v Hessian: Σ_h α_h z_hᵀ z_h with
// z_h = P_h X equals Xᵀ (Σ_h α_h P_hᵀ P_h) X.
void OutputAwareAccumulator::AddSequence(int64_t layer, Eigen::Index first,
                                         const std::vector<RowMatrix>& probs) {
  const Eigen::Index t_len = probs.front().rows();
  const RowMatrix x = attention_input_.middleRows(first, t_len);
  // Symmetric rank-T updates fill only the lower triangle: half the work.
  Eigen::MatrixXf mixing = Eigen::MatrixXf::Zero(t_len, t_len);
  for (int64_t h = 0; h < config_.num_heads; ++h) {
    const RowMatrix& p = probs[static_cast<size_t>(h)];
    mixing.selfadjointView<Eigen::Lower>().rankUpdate(p.transpose(),
                                                      head_weight_[static_cast<size_t>(layer)](h));
  }
  mixing.triangularView<Eigen::StrictlyUpper>() = mixing.transpose();
  Sums& v = At(layer, OutputAwareWeight::kVProj);
  const RowMatrix mixed = mixing * x;
  v.sum += (x.transpose() * mixed).cast<double>();
  v.rows += t_len;
  if (with_qk_) AddQkSequence(layer, x, probs);
}

// One sequence's contribution to the q and k Hessians (formulas in the
// header). With G_v = V Vᵀ and G_k = K Kᵀ of the head's KV group:
//   ‖C_t‖²_F = p_tᵀ (G_v ∘ G_k) p_t − 2 Σ_j P_tj (P G_v)_tj (P G_k)_tj
//              + (P G_v Pᵀ)_tt (P G_k Pᵀ)_tt,
//   ‖v_j − v̄_t‖² = (G_v)_jj − 2 (P G_v)_tj + (P G_v Pᵀ)_tt.
void OutputAwareAccumulator::AddQkSequence(int64_t layer, const RowMatrix& x,
                                           const std::vector<RowMatrix>& probs) {
  const LlamaLayerWeights& w = weights_->layers[static_cast<size_t>(layer)];
  const Eigen::Index t_len = x.rows(), d = config_.head_dim;
  std::vector<int64_t> positions(static_cast<size_t>(t_len));
  for (Eigen::Index t = 0; t < t_len; ++t) positions[static_cast<size_t>(t)] = t;
  const Qkv qkv = ProjectQkv(config_, w, x, MakeRopeTable(t_len, config_), positions);
  const int64_t group = config_.num_heads / config_.num_kv_heads;
  Eigen::VectorXf c_q = Eigen::VectorXf::Zero(t_len), c_k = Eigen::VectorXf::Zero(t_len);
  for (int64_t h = 0; h < config_.num_heads; ++h) {
    const RowMatrix& p = probs[static_cast<size_t>(h)];
    const float scale = head_weight_[static_cast<size_t>(layer)](h) / static_cast<float>(d);
    const Eigen::Index kv = (h / group) * d;
    const RowMatrix gv = qkv.v.middleCols(kv, d) * qkv.v.middleCols(kv, d).transpose();
    const RowMatrix gk = qkv.k.middleCols(kv, d) * qkv.k.middleCols(kv, d).transpose();
    const RowMatrix pgv = p * gv, pgk = p * gk;
    const Eigen::ArrayXf pgvp = (pgv.array() * p.array()).rowwise().sum();  // (P G_v Pᵀ)_tt
    const Eigen::ArrayXf pgkp = (pgk.array() * p.array()).rowwise().sum();
    const RowMatrix pm = p * (gv.array() * gk.array()).matrix();
    const Eigen::ArrayXf quad = (pm.array() * p.array()).rowwise().sum();
    const Eigen::ArrayXf cross = (p.array() * pgv.array() * pgk.array()).rowwise().sum();
    c_q += scale * (quad - 2 * cross + pgvp * pgkp).max(0.0f).matrix();
    // Σ_t P_tj² ‖q_t‖² ‖v_j − v̄_t‖², as a column sum over t.
    const Eigen::ArrayXf qn = qkv.q.middleCols(h * d, d).rowwise().squaredNorm().array();
    Eigen::ArrayXXf spread = (-2 * pgv.array()).colwise() + pgvp;
    spread.rowwise() += gv.diagonal().array().transpose();
    const Eigen::ArrayXXf e = (p.array().square() * spread.max(0.0f)).colwise() * qn;
    c_k += scale * e.colwise().sum().matrix().transpose();
  }
  Sums& q = At(layer, OutputAwareWeight::kQProj);
  Sums& k = At(layer, OutputAwareWeight::kKProj);
  AddWeighted(x, c_q, q.sum);
  AddWeighted(x, c_k, k.sum);
  q.rows += t_len;
  k.rows += t_len;
}

void OutputAwareAccumulator::ObserveMlpProjections(int64_t layer, const RowMatrix& g,
                                                   const RowMatrix& u) {
  const RowMatrix& x = mlp_input_;
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

bool OutputAwareAccumulator::Covers(OutputAwareWeight w) const {
  return with_qk_ || (w != OutputAwareWeight::kQProj && w != OutputAwareWeight::kKProj);
}

std::vector<OutputAwareWeight> OutputAwareAccumulator::Covered() const {
  std::vector<OutputAwareWeight> covered;
  for (const OutputAwareWeight w : kOutputAwareWeights) {
    if (Covers(w)) covered.push_back(w);
  }
  return covered;
}

Eigen::MatrixXd OutputAwareAccumulator::Hessian(int64_t layer, OutputAwareWeight w) const {
  const Sums& s = At(layer, w);
  Eigen::MatrixXd h = s.sum.selfadjointView<Eigen::Lower>();  // exactly symmetric
  if (s.rows > 0) h /= static_cast<double>(s.rows);
  return h;
}

}  // namespace glvq::model
