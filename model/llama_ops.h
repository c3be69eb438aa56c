// The building blocks of a Llama decoder layer, in F32 and in the order
// Hugging Face computes them: shared by the batched forward pass
// (llama.cc) and the incremental decoder (llama_decoder.cc), so both
// compute the same function.
#pragma once

#include <cstdint>
#include <vector>

#include "model/llama.h"

namespace glvq::model {

// x · Wᵀ for row-major activations x [tokens, in] and weights W [out, in].
RowMatrix Linear(const RowMatrix& x, const RowMatrix& w);

// HF LlamaRMSNorm: x · rsqrt(mean(x²) + eps), then times the weight.
RowMatrix RmsNorm(const RowMatrix& x, const Eigen::VectorXf& weight, double eps);

// cos and sin of the rotary angles, [position, head_dim / 2].
struct RopeTable {
  RowMatrix cos, sin;
};
// The angles are formed in F32 exactly as HF does (inv_freq = 1 / θ^(2i/d)
// in F32, times the position in F32) so that long sequences match it.
RopeTable MakeRopeTable(int64_t positions, int64_t head_dim, double theta);

// Rotate-half RoPE on every head of x [tokens, heads · head_dim]; token r
// is at position positions[r] (< the table's positions).
void ApplyRope(const RopeTable& rope, const std::vector<int64_t>& positions, int64_t head_dim,
               RowMatrix& x);

// silu(gate) · up, element-wise.
RowMatrix SwiGlu(const RowMatrix& gate, const RowMatrix& up);

}  // namespace glvq::model
