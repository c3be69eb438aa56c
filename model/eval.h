// Model-level quality: next-token negative log-likelihood and perplexity of
// a model on token sequences, and how far a quantized model's predictions
// are from the original's.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "absl/status/statusor.h"
#include "model/llama.h"
#include "model/tokens.h"

namespace glvq::model {

struct EvalOptions {
  // Sequences are run in batches of about this many tokens (a sequence is
  // never split): bounds the logits held at once to tokens × vocab floats.
  int64_t batch_tokens = 4096;
  // Batches evaluated at once (0: all cores); never changes the result.
  // Each holds its logits (and the reference's): tokens × vocab × 4 bytes.
  int threads = 0;
};

struct EvalResult {
  int64_t sequences = 0;
  // Positions that predict a next token: Σ (length − 1). Every mean below
  // is over these positions, pooled over all sequences.
  int64_t predictions = 0;
  double nll = 0;  // mean −log p(next token), nats (of `model`)
  double ppl = 0;  // exp(nll)
  // With a reference model (the original):
  std::optional<double> nll_original;  // the reference's nll
  std::optional<double> kl;            // mean KL(reference ‖ model), nats
  std::optional<double> top1;          // fraction of positions with equal argmax
};

// Evaluates `model` on `sequences`; with `reference`, also compares their
// next-token distributions. INVALID_ARGUMENT if no sequence has two tokens
// (nothing to predict), if the models' vocabularies differ, or for ids
// outside the vocabulary. Log-probabilities and sums are taken in double.
absl::StatusOr<EvalResult> Evaluate(const LlamaModel& model,
                                    std::span<const TokenSequence> sequences,
                                    const LlamaModel* reference = nullptr,
                                    const EvalOptions& options = {});

// The reference model's next-token distributions on a set of sequences,
// kept so that many models can be compared with it without running it
// again (the real-model benchmark): log-probabilities rounded to F32,
// predictions × vocab × 4 bytes.
struct ReferencePredictions {
  int64_t vocab = 0;
  int64_t predictions = 0;     // Σ (length − 1), in sequence order
  std::vector<float> log_p;    // predictions × vocab, row-major
  std::vector<int64_t> argmax;  // [predictions], of the reference's logits
  double nll = 0;               // the reference's mean NLL (in double, as Evaluate)
};

// Runs `reference` once over `sequences` (errors as Evaluate).
absl::StatusOr<ReferencePredictions> Predict(const LlamaModel& reference,
                                             std::span<const TokenSequence> sequences,
                                             const EvalOptions& options = {});

// Evaluate against cached predictions of the same `sequences`: the same
// figures as with the reference model, except that KL uses the F32-rounded
// log-probabilities (a relative difference of order 1e-7).
// INVALID_ARGUMENT if the predictions do not fit the sequences or vocabulary.
absl::StatusOr<EvalResult> Evaluate(const LlamaModel& model,
                                    std::span<const TokenSequence> sequences,
                                    const ReferencePredictions& reference,
                                    const EvalOptions& options = {});

// Splits `sequences` into consecutive batches of at most `batch_tokens`
// tokens each (a longer sequence is a batch of its own).
std::vector<std::span<const TokenSequence>> MakeBatches(std::span<const TokenSequence> sequences,
                                                        int64_t batch_tokens);

}  // namespace glvq::model
