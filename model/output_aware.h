// Output-aware Hessians for the weights whose outputs are multiplied by
// something else before they reach the residual stream.
//
// Plain calibration gives every weight the Hessian of its input, E[x xᵀ]:
// it treats an error in any output, on any token, as equally harmful. Three
// weights of a Llama layer do not pass their outputs on as they are:
//   v_proj     its outputs are averaged over the tokens by the attention
//              probabilities P_h, then mixed by o_proj's head block W_o,h;
//              the error on token t is W_o,h ΔW_v (Σ_s P_h[t,s] x_s), so the
//              metric is Σ_h α_h E[z_h z_hᵀ] with z_h = P_h x and
//              α_h = ‖W_o,h‖²_F (normalised to sum to 1);
//   up_proj    its output r is multiplied by silu(g_r) (g = gate output)
//              and then read by down_proj's column r: token t's error is
//              weighted by c_t = Σ_r w_r silu(g_rt)², w_r = ‖W_down[:,r]‖²
//              (normalised);
//   gate_proj  likewise with c_t = Σ_r w_r (u_rt · silu′(g_rt))² (u = up
//              output): the first-order effect of an error in g_r.
//   q_proj     through the softmax: an error e in head h's query at token t
//              moves the output by C_t e / √d with C_t = Σ_j P[t,j] (v_j − v̄_t) k_jᵀ
//              (v̄_t = Σ_j P[t,j] v_j; RoPE rotates e and k alike and drops
//              out), so token t is weighted by Σ_h α_h ‖C_t‖²_F / d;
//   k_proj     likewise, an error at key token j moves output t by
//              P[t,j] (v_j − v̄_t) q_tᵀ e / √d; token j is weighted by
//              Σ_h α_h Σ_t P[t,j]² ‖v_j − v̄_t‖² ‖q_t‖² / d (the cross terms
//              between keys are left out).
// One Hessian per weight (the rows share it, as LDLQ needs), averaged over
// the rows with those weights. o_proj and down_proj write to the residual
// stream directly, where the plain Hessian is already the right metric.
// Models with per-head q/k norms (Qwen3) keep plain q/k Hessians: the norm
// changes the Jacobian.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "model/llama.h"

namespace glvq::model {

enum class OutputAwareWeight { kVProj, kGateProj, kUpProj, kQProj, kKProj };
inline constexpr OutputAwareWeight kOutputAwareWeights[] = {
    OutputAwareWeight::kVProj, OutputAwareWeight::kGateProj, OutputAwareWeight::kUpProj,
    OutputAwareWeight::kQProj, OutputAwareWeight::kKProj};
inline constexpr size_t kOutputAwareCount = std::size(kOutputAwareWeights);

// "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj", "self_attn.q_proj", "self_attn.k_proj".
const char* OutputAwareModule(OutputAwareWeight w);

// Accumulates the three output-aware Hessians of every layer, in double.
// Fed by a HessianAccumulator (one per calibration lane); holds a pointer
// to `weights`, which must outlive it.
class OutputAwareAccumulator {
 public:
  // `with_qk`: q_proj and k_proj too (their sums cost O(T³) per head and
  // sequence; measured no better than plain on SmolLM2, docs/quality.md).
  OutputAwareAccumulator(const LlamaConfig& config, const LlamaWeights& weights, bool with_qk);

  void Observe(int64_t layer, LinearInput input, const RowMatrix& x);
  void ObserveAttention(int64_t layer, int64_t head, Eigen::Index first, const RowMatrix& probs);
  // gate and up of the layer's MLP input last passed to Observe(kMlp).
  void ObserveMlpProjections(int64_t layer, const RowMatrix& gate, const RowMatrix& up);
  void Add(const OutputAwareAccumulator& other);

  // Whether `w` gets an output-aware Hessian (q/k: only `with_qk`, and
  // not with per-head q/k norms).
  bool Covers(OutputAwareWeight w) const;
  // The weights it Covers, in kOutputAwareWeights order.
  std::vector<OutputAwareWeight> Covered() const;
  // Σ_t (weighted) / N, exactly symmetric; zero if nothing was observed.
  Eigen::MatrixXd Hessian(int64_t layer, OutputAwareWeight w) const;

 private:
  struct Sums {
    Eigen::MatrixXd sum;  // Σ (weighted) x xᵀ
    int64_t rows = 0;
  };
  Sums& At(int64_t layer, OutputAwareWeight w) {
    return sums_[static_cast<size_t>(layer) * kOutputAwareCount + static_cast<size_t>(w)];
  }
  const Sums& At(int64_t layer, OutputAwareWeight w) const {
    return sums_[static_cast<size_t>(layer) * kOutputAwareCount + static_cast<size_t>(w)];
  }
  void FlushAttention(int64_t layer);
  void AddSequence(int64_t layer, Eigen::Index first, const std::vector<RowMatrix>& probs);
  void AddQkSequence(int64_t layer, const RowMatrix& x, const std::vector<RowMatrix>& probs);

  LlamaConfig config_;
  const LlamaWeights* weights_;
  bool with_qk_;
  std::vector<Sums> sums_;
  std::vector<Eigen::VectorXf> head_weight_;  // per layer: α_h
  std::vector<Eigen::VectorXf> down_weight_;  // per layer: w_r
  // The current layer's attention input and, per sequence (by first row),
  // every head's attention probabilities.
  RowMatrix attention_input_, mlp_input_;
  std::map<Eigen::Index, std::vector<RowMatrix>> probs_;
};

}  // namespace glvq::model
