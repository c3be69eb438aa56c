// Incremental decoding with a key/value cache: one token per sequence per
// step, each token's keys and values computed once and kept. Generation
// needs the next-token distribution after every token; LlamaModel::Forward
// would recompute the whole prefix each time (quadratic in the length).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "model/llama.h"
#include "model/llama_ops.h"

namespace glvq::model {

class LlamaDecoder {
 public:
  // Decodes `sequences` sequences in lock-step, up to `max_length` tokens
  // each. `model` must outlive the decoder. The cache takes
  // 2 · layers · sequences · max_length · kv_dim floats.
  LlamaDecoder(const LlamaModel& model, int64_t sequences, int64_t max_length);

  // Appends tokens[s] to sequence s (at position length()) and returns the
  // next-token logits [sequences, vocab]: row s equals the last row of
  // Forward() on sequence s so far, to F32 rounding. INVALID_ARGUMENT for a
  // token count other than `sequences`, an id outside the vocabulary, or a
  // step beyond `max_length`.
  absl::StatusOr<RowMatrix> Step(std::span<const int32_t> tokens);

  // Tokens per sequence fed so far.
  int64_t length() const { return length_; }

 private:
  // Runs the attention of every sequence's new token over its cache;
  // writes the concatenated head outputs [sequences, q_dim].
  RowMatrix Attend(int64_t layer, const RowMatrix& q, const RowMatrix& k, const RowMatrix& v);

  const LlamaModel& model_;
  int64_t sequences_, max_length_, length_ = 0;
  RopeTable rope_;
  // Per layer: row s · max_length + t holds sequence s's key (value) of
  // token t, [sequences · max_length, kv_dim].
  std::vector<RowMatrix> keys_, values_;
};

}  // namespace glvq::model
