#include "model/sampling.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "model/llama_decoder.h"

namespace glvq::model {
namespace {

absl::Status CheckOptions(const LlamaConfig& c, const SampleOptions& o) {
  if (o.sequences < 1) return absl::InvalidArgumentError("sequences must be >= 1");
  if (o.length < 2 || o.length > c.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("length must be within 2..", c.max_position_embeddings,
                     " (max_position_embeddings), got ", o.length));
  }
  if (c.bos_token_id >= c.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bos_token_id ", c.bos_token_id, " is outside the vocabulary [0, ", c.vocab_size,
        ")"));
  }
  return absl::OkStatus();
}

// The id whose cumulative softmax probability first exceeds u ∈ [0, 1).
int32_t Draw(const float* logits, int64_t n, double u, std::vector<double>& p) {
  p.resize(static_cast<size_t>(n));
  const double max = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    p[static_cast<size_t>(i)] = std::exp(logits[i] - max);
    sum += p[static_cast<size_t>(i)];
  }
  const double target = u * sum;
  double cumulative = 0;
  int32_t last_possible = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (p[static_cast<size_t>(i)] == 0) continue;
    cumulative += p[static_cast<size_t>(i)];
    last_possible = static_cast<int32_t>(i);
    if (cumulative > target) break;
  }
  return last_possible;  // also where rounding left the total just below target
}

// Samples sequences [first, first + count) into `out`.
absl::Status SampleBatch(const LlamaModel& model, const SampleOptions& o, int64_t first,
                         int64_t count, std::vector<TokenSequence>& out) {
  std::vector<Rng> rngs;
  std::vector<int32_t> current(static_cast<size_t>(count),
                               static_cast<int32_t>(model.config().bos_token_id));
  for (int64_t s = 0; s < count; ++s) {
    rngs.emplace_back(DeriveSeed(o.seed, static_cast<uint64_t>(first + s)));
    out[static_cast<size_t>(first + s)] = {current[static_cast<size_t>(s)]};
  }
  LlamaDecoder decoder(model, count, o.length - 1);
  std::vector<double> scratch;
  for (int64_t t = 1; t < o.length; ++t) {
    ASSIGN_OR_RETURN(const RowMatrix logits, decoder.Step(current));
    for (int64_t s = 0; s < count; ++s) {
      const auto i = static_cast<size_t>(s);
      current[i] = Draw(logits.row(s).data(), logits.cols(), rngs[i].Uniform(), scratch);
      out[static_cast<size_t>(first) + i].push_back(current[i]);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<TokenSequence>> SampleSequences(const LlamaModel& model,
                                                           const SampleOptions& options) {
  RETURN_IF_ERROR(CheckOptions(model.config(), options));
  std::vector<TokenSequence> out(static_cast<size_t>(options.sequences));
  for (int64_t first = 0; first < options.sequences; first += kSampleBatchSequences) {
    const int64_t count = std::min(kSampleBatchSequences, options.sequences - first);
    RETURN_IF_ERROR(SampleBatch(model, options, first, count, out));
  }
  return out;
}

}  // namespace glvq::model
