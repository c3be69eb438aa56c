// `glvq-bench model --model smollm2` (real_model_bench.cc): every method on
// a real trained LLM with Hessians from real text, against llama.cpp's
// types in the same run; docs/quality.md leads with its table.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace glvq::bench {

struct RealModelOptions {
  std::string model_dir = "out/models/smollm2";  // scripts/fetch-models.sh
  // Rows of scripts/llama-cpp-peer.sh; skipped when the file is absent.
  std::string peers = "out/peers/llama.cpp/rows.jsonl";
  std::vector<std::string> methods;  // empty: all (peers are "llama.cpp")
  std::vector<double> bits;          // empty: all
  std::vector<std::string> configs;  // substrings of the config name; empty: all
  int threads = 0;                   // tensors quantized at once; 0: all cores
  // Held-out sequences evaluated (the first ones of eval.tokens); 0: all.
  // 16 × 512 tokens: each row costs one forward pass of the quantized model.
  int eval_sequences = 16;
  bool json = false;
};

absl::Status RunRealModel(const RealModelOptions& options);

}  // namespace glvq::bench
