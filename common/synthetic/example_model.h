// Synthetic Llama-shaped models with LLM-like weight statistics, generated
// deterministically from a seed: the quickstart's example model and the
// benchmarks' "LLM-like" source. No downloads, no real training — the
// statistics (heavy tails, row and column scale spread, outlier input
// channels) are what a weight quantizer reacts to, so those are imitated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/tensor/dtype.h"

namespace glvq {

struct LlmLikeWeightOptions {
  int64_t rows = 256;               // output features
  int64_t cols = 256;               // input features
  uint64_t seed = 1;
  int student_nu = 5;               // tail heaviness of the entries
  double row_scale_sigma = 0.2;     // log-normal spread of per-row scales
  double col_scale_sigma = 0.3;     // log-normal spread of per-column scales
  double outlier_fraction = 0.01;   // share of input channels that are outliers
  double outlier_gain_min = 3.0;    // their extra gain, drawn log-uniformly
  double outlier_gain_max = 8.0;
};

// A rows × cols row-major weight: Student-t entries × row scale × column
// scale, a few outlier input columns, overall std ≈ 1/sqrt(cols).
std::vector<float> MakeLlmLikeWeight(const LlmLikeWeightOptions& options);

struct ExampleModelOptions {
  int hidden = 256;
  int intermediate = 688;  // 5·128 + 48: a ragged last group, like real models
  int layers = 4;
  int heads = 8;
  int kv_heads = 4;
  int vocab = 1024;
  uint64_t seed = 1;
  DType dtype = DType::kBF16;
};

// Writes `config.json` (Hugging Face LlamaForCausalLM) and
// `model.safetensors` into `dir`, which must not exist yet (it is created;
// FAILED_PRECONDITION otherwise). Same options → byte-identical files.
absl::Status WriteExampleModel(const std::filesystem::path& dir,
                               const ExampleModelOptions& options);

}  // namespace glvq
