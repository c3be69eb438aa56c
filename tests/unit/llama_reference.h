// An independent oracle for the Llama forward pass: plain loops in double,
// one sequence at a time, written from the HF semantics without sharing
// code with model/. Also random tiny models to run it on.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "model/llama.h"

namespace glvq::testing {

using Rows = std::vector<std::vector<double>>;  // [token][feature]

struct ReferenceRun {
  Rows logits;                              // [position][vocab]
  std::vector<std::array<Rows, 4>> inputs;  // [layer][LinearInput] rows
  // [layer][head][query position t] the attention weights of keys 0…t.
  std::vector<std::vector<Rows>> probs;
  std::vector<std::array<Rows, 3>> qkv;  // [layer] q, k (after RoPE), v rows
};

ReferenceRun ReferenceForward(const model::LlamaConfig& c, const model::LlamaWeights& w,
                              const model::TokenSequence& seq);

// hidden 16, intermediate 24, 2 layers, 4 heads of 4 with 2 KV heads,
// vocab 37, rope_theta 500.
model::LlamaConfig TinyConfig(bool tied);
// Gaussian weights scaled by 1/sqrt(fan-in), norm weights near 1.
model::LlamaWeights RandomWeights(const model::LlamaConfig& c, uint64_t seed);

}  // namespace glvq::testing
