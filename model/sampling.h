// Data-free evaluation text: token sequences sampled from a model itself
// at temperature 1, i.e. text the original model would produce. Comparing
// a quantized model with its original on such text (glvq eval) measures
// how far quantization moved the model where the original puts its
// probability mass, without any dataset.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/llama.h"
#include "model/tokens.h"

namespace glvq::model {

struct SampleOptions {
  int64_t sequences = 16;
  int64_t length = 128;  // tokens per sequence, the first (BOS) included
  uint64_t seed = 1;
};

// Sequences decoded together (LlamaDecoder); bounds the key/value cache.
inline constexpr int64_t kSampleBatchSequences = 8;

// `options.sequences` sequences of `options.length` tokens. Each starts
// with config().bos_token_id; every next token is drawn from the model's
// next-token distribution softmax(logits) by inverse CDF in double, with
// one uniform per token from sequence s's own stream
// Rng(DeriveSeed(seed, s)). Same model, options and build → same
// sequences (the logits, and so the draws, may differ in the last float
// bits between CPUs with different vector units). INVALID_ARGUMENT for
// sequences < 1, length < 2 or above max_position_embeddings, or a BOS id
// outside the vocabulary.
absl::StatusOr<std::vector<TokenSequence>> SampleSequences(const LlamaModel& model,
                                                           const SampleOptions& options);

}  // namespace glvq::model
