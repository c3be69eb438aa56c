// Text generation from a prompt: the prompt's tokens through the
// incremental decoder (model/llama_decoder.h), then one new token per step,
// greedy or sampled.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "model/llama.h"
#include "model/tokens.h"

namespace glvq::model {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  // 0: greedy (the most likely token; the lowest id among equals). > 0:
  // drawn from softmax(logits / temperature), by inverse CDF in double
  // with one uniform per token from Rng(seed).
  double temperature = 0;
  int64_t top_k = 0;  // > 0: draw only among the top_k most likely tokens
  uint64_t seed = 1;
  std::vector<int64_t> stop_ids;  // generation ends after emitting one of these
};

// The new tokens after `prompt` (at least one id, each in the vocabulary),
// at most max_new_tokens of them. `on_token` (may be empty) sees each new
// token as it is chosen. INVALID_ARGUMENT for an empty prompt, a bad id,
// max_new_tokens < 1, a negative temperature or top_k, or a prompt plus
// new tokens longer than 1 << 20.
absl::StatusOr<TokenSequence> Generate(const LlamaModel& model, const TokenSequence& prompt,
                                       const GenerateOptions& options,
                                       const std::function<void(int32_t)>& on_token = {});

}  // namespace glvq::model
