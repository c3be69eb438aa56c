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
// One Hessian per weight (the rows share it, as LDLQ needs), averaged over
// the rows with those weights. q_proj and k_proj act through the softmax and
// keep the plain Hessian; o_proj and down_proj write to the residual stream
// directly, where the plain Hessian is already the right metric.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/llama.h"

namespace glvq::model {

enum class OutputAwareWeight { kVProj, kGateProj, kUpProj };
inline constexpr OutputAwareWeight kOutputAwareWeights[] = {
    OutputAwareWeight::kVProj, OutputAwareWeight::kGateProj, OutputAwareWeight::kUpProj};

// "self_attn.v_proj", "mlp.gate_proj" or "mlp.up_proj".
const char* OutputAwareModule(OutputAwareWeight w);

// Accumulates the three output-aware Hessians of every layer, in double.
// Fed by a HessianAccumulator (one per calibration lane); holds a pointer
// to `weights`, which must outlive it.
class OutputAwareAccumulator {
 public:
  OutputAwareAccumulator(const LlamaConfig& config, const LlamaWeights& weights);

  void Observe(int64_t layer, LinearInput input, const RowMatrix& x);
  void ObserveAttention(int64_t layer, int64_t head, Eigen::Index first, const RowMatrix& probs);
  void Add(const OutputAwareAccumulator& other);

  // Σ_t (weighted) / N, exactly symmetric; zero if nothing was observed.
  Eigen::MatrixXd Hessian(int64_t layer, OutputAwareWeight w) const;

 private:
  struct Sums {
    Eigen::MatrixXd sum;  // full, symmetric by construction up to rounding
    int64_t rows = 0;
  };
  Sums& At(int64_t layer, OutputAwareWeight w) {
    return sums_[static_cast<size_t>(layer) * 3 + static_cast<size_t>(w)];
  }
  const Sums& At(int64_t layer, OutputAwareWeight w) const {
    return sums_[static_cast<size_t>(layer) * 3 + static_cast<size_t>(w)];
  }
  void FlushAttention(int64_t layer);
  void ObserveMlp(int64_t layer, const RowMatrix& x);

  LlamaConfig config_;
  const LlamaWeights* weights_;
  std::vector<Sums> sums_;
  std::vector<Eigen::VectorXf> head_weight_;  // per layer: α_h
  std::vector<Eigen::VectorXf> down_weight_;  // per layer: w_r
  // The current layer's attention input and, per sequence (by first row),
  // Σ_h α_h P_hᵀ P_h.
  RowMatrix attention_input_;
  std::map<Eigen::Index, Eigen::MatrixXf> mixing_;
};

}  // namespace glvq::model
