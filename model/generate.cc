#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "model/llama_decoder.h"

namespace glvq::model {
namespace {

constexpr int64_t kMaxGenerateLength = int64_t{1} << 20;

absl::Status CheckOptions(const LlamaConfig& c, const TokenSequence& prompt,
                          const GenerateOptions& o) {
  if (prompt.empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  for (const int32_t id : prompt) {
    if (id < 0 || id >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt token ", id, " is outside the vocabulary [0, ", c.vocab_size, ")"));
    }
  }
  if (o.max_new_tokens < 1) return absl::InvalidArgumentError("max_new_tokens must be >= 1");
  if (!(o.temperature >= 0) || o.top_k < 0) {
    return absl::InvalidArgumentError("temperature and top_k must be >= 0");
  }
  if (static_cast<int64_t>(prompt.size()) + o.max_new_tokens > kMaxGenerateLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt plus new tokens exceed ", kMaxGenerateLength));
  }
  return absl::OkStatus();
}

// The chosen next token from one row of logits.
int32_t Choose(const float* logits, int64_t n, const GenerateOptions& o, Rng& rng) {
  if (o.temperature == 0)
    return static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  if (o.top_k > 0 && o.top_k < n) {
    // Ties broken by id, so the candidate set never depends on the sort.
    std::partial_sort(ids.begin(), ids.begin() + o.top_k, ids.end(), [&](int32_t a, int32_t b) {
      return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    });
    ids.resize(static_cast<size_t>(o.top_k));
    std::sort(ids.begin(), ids.end());
  }
  double max = -INFINITY;
  for (const int32_t i : ids) max = std::max(max, static_cast<double>(logits[i]));
  std::vector<double> p(ids.size());
  double sum = 0;
  for (size_t k = 0; k < ids.size(); ++k)
    sum += p[k] = std::exp((logits[ids[k]] - max) / o.temperature);
  const double target = rng.Uniform() * sum;
  double cumulative = 0;
  for (size_t k = 0; k < ids.size(); ++k) {
    cumulative += p[k];
    if (cumulative > target) return ids[k];
  }
  return ids.back();  // rounding left the total just below the target
}

}  // namespace

absl::StatusOr<TokenSequence> Generate(const LlamaModel& model, const TokenSequence& prompt,
                                       const GenerateOptions& options,
                                       const std::function<void(int32_t)>& on_token) {
  RETURN_IF_ERROR(CheckOptions(model.config(), prompt, options));
  const int64_t total = static_cast<int64_t>(prompt.size()) + options.max_new_tokens;
  LlamaDecoder decoder(model, 1, total);
  RowMatrix logits;
  for (const int32_t id : prompt) {
    ASSIGN_OR_RETURN(logits, decoder.Step(std::span<const int32_t>(&id, 1)));
  }
  Rng rng(options.seed);
  TokenSequence out;
  while (true) {
    const int32_t next = Choose(logits.row(0).data(), logits.cols(), options, rng);
    out.push_back(next);
    if (on_token) on_token(next);
    const bool stop =
        std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end();
    if (stop || static_cast<int64_t>(out.size()) == options.max_new_tokens) break;
    ASSIGN_OR_RETURN(logits, decoder.Step(std::span<const int32_t>(&next, 1)));
  }
  return out;
}

}  // namespace glvq::model
