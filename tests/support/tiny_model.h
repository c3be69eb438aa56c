// A tiny Llama-named safetensors model for job spec and planner tests that
// must not depend on the shared fixtures: one embedding, one norm, an output
// head and three projections, one of them 300 columns wide (a ragged last
// group at any power-of-two group size).
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/safetensors/writer.h"
#include "gtest/gtest.h"

namespace glvq::testing {

struct TinyTensor {
  std::string name;
  std::vector<int64_t> shape;
};

inline const std::vector<TinyTensor>& TinyModelTensors() {
  static const auto* tensors = new std::vector<TinyTensor>{
      {"lm_head.weight", {32, 16}},
      {"model.embed_tokens.weight", {32, 16}},
      {"model.layers.0.mlp.down_proj.weight", {16, 300}},
      {"model.layers.0.mlp.up_proj.weight", {300, 16}},
      {"model.layers.0.self_attn.q_proj.weight", {16, 16}},
      {"model.norm.weight", {16}},
  };
  return *tensors;
}

// Writes the tiny model (F32, deterministic values) into `dir`, created here.
inline void WriteTinyModel(const std::filesystem::path& dir,
                           const std::map<std::string, std::string>& metadata = {}) {
  std::filesystem::create_directories(dir);
  std::vector<std::vector<float>> data;
  std::vector<TensorToWrite> tensors;
  for (const TinyTensor& t : TinyModelTensors()) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<float>& v = data.emplace_back(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 17) * 0.01f - 0.08f;
  }
  for (size_t i = 0; i < data.size(); ++i) {
    tensors.push_back({TinyModelTensors()[i].name, DType::kF32, TinyModelTensors()[i].shape,
                       std::as_bytes(std::span<const float>(data[i]))});
  }
  ASSERT_TRUE(WriteSafetensorsModel(dir, tensors, metadata).ok());
}

}  // namespace glvq::testing
