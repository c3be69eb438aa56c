#include "model/eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/parallel.h"

namespace glvq::model {
namespace {

// log softmax of one row of logits, in double.
void LogSoftmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double max = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(logits[i] - max);
  const double log_z = max + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = logits[i] - log_z;
}

int64_t ArgMax(const float* v, int64_t n) {
  return static_cast<int64_t>(std::max_element(v, v + n) - v);
}

// KL(p ‖ q) from log-probabilities; never negative (rounding can make the
// exact-zero case come out at −1e-17).
double KlDivergence(const std::vector<double>& log_p, const std::vector<double>& log_q) {
  double kl = 0;
  for (size_t i = 0; i < log_p.size(); ++i) kl += std::exp(log_p[i]) * (log_p[i] - log_q[i]);
  return std::max(kl, 0.0);
}

struct Sums {
  double nll = 0, nll_reference = 0, kl = 0;
  int64_t agree = 0, predictions = 0;
};

// Adds the predictions of one batch: row r of the logits predicts the token
// that follows it within its sequence.
void Accumulate(std::span<const TokenSequence> batch, const RowMatrix& logits,
                const RowMatrix* reference_logits, Sums& sums) {
  const int64_t vocab = logits.cols();
  std::vector<double> log_q, log_p;
  Eigen::Index row = 0;
  for (const TokenSequence& seq : batch) {
    for (size_t pos = 0; pos + 1 < seq.size(); ++pos, ++row) {
      const auto next = static_cast<size_t>(seq[pos + 1]);
      LogSoftmax(logits.row(row).data(), vocab, log_q);
      sums.nll -= log_q[next];
      ++sums.predictions;
      if (reference_logits == nullptr) continue;
      const float* ref = reference_logits->row(row).data();
      LogSoftmax(ref, vocab, log_p);
      sums.nll_reference -= log_p[next];
      sums.kl += KlDivergence(log_p, log_q);
      if (ArgMax(ref, vocab) == ArgMax(logits.row(row).data(), vocab)) ++sums.agree;
    }
    ++row;  // the last token predicts nothing
  }
}

absl::Status CheckInputs(const LlamaModel& model, std::span<const TokenSequence> sequences,
                         const LlamaModel* reference) {
  if (reference != nullptr && reference->config().vocab_size != model.config().vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("the models' vocabularies differ: ", model.config().vocab_size, " vs ",
                     reference->config().vocab_size));
  }
  // Beyond the trained context the positions are out of distribution (and
  // RoPE's) and every figure would be silently meaningless.
  const int64_t context = model.config().max_position_embeddings;
  bool predicts = false;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const int64_t n = static_cast<int64_t>(sequences[i].size());
    if (context > 0 && n > context) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence ", i, " has ", n, " tokens, more than the model's context of ", context,
          " (max_position_embeddings); cut the token file's sequences to at most that"));
    }
    predicts = predicts || n >= 2;
  }
  if (predicts) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "no sequence has two or more tokens: there is no next token to predict");
}

// The batches' sums added in batch order (so the result does not depend on
// the thread count); the first batch's error if any failed.
absl::StatusOr<Sums> AddInOrder(const std::vector<Sums>& parts,
                                const std::vector<absl::Status>& status) {
  Sums sums;
  for (size_t b = 0; b < parts.size(); ++b) {
    RETURN_IF_ERROR(status[b]);
    sums.nll += parts[b].nll;
    sums.nll_reference += parts[b].nll_reference;
    sums.kl += parts[b].kl;
    sums.agree += parts[b].agree;
    sums.predictions += parts[b].predictions;
  }
  return sums;
}

// Means over the predictions; the comparison figures when `compared`.
EvalResult ToResult(const Sums& sums, size_t sequences, bool compared) {
  EvalResult r;
  r.sequences = static_cast<int64_t>(sequences);
  r.predictions = sums.predictions;
  const auto n = static_cast<double>(sums.predictions);
  r.nll = sums.nll / n;
  r.ppl = std::exp(r.nll);
  if (compared) {
    r.nll_original = sums.nll_reference / n;
    r.kl = sums.kl / n;
    r.top1 = static_cast<double>(sums.agree) / n;
  }
  return r;
}

// Predictions before each batch: where its rows start in a ReferencePredictions.
std::vector<int64_t> BatchStarts(const std::vector<std::span<const TokenSequence>>& batches) {
  std::vector<int64_t> starts(batches.size() + 1, 0);
  for (size_t b = 0; b < batches.size(); ++b) {
    int64_t n = 0;
    for (const TokenSequence& seq : batches[b]) n += std::max<int64_t>(0, int64_t(seq.size()) - 1);
    starts[b + 1] = starts[b] + n;
  }
  return starts;
}

// Adds one batch's predictions against cached reference rows from `first`.
void AccumulateCached(std::span<const TokenSequence> batch, const RowMatrix& logits,
                      const ReferencePredictions& ref, int64_t first, Sums& sums) {
  const int64_t vocab = logits.cols();
  std::vector<double> log_q, log_p(static_cast<size_t>(vocab));
  Eigen::Index row = 0;
  int64_t p = first;
  for (const TokenSequence& seq : batch) {
    for (size_t pos = 0; pos + 1 < seq.size(); ++pos, ++row, ++p) {
      const auto next = static_cast<size_t>(seq[pos + 1]);
      LogSoftmax(logits.row(row).data(), vocab, log_q);
      const float* ref_row = ref.log_p.data() + p * vocab;
      for (int64_t i = 0; i < vocab; ++i) log_p[static_cast<size_t>(i)] = ref_row[i];
      sums.nll -= log_q[next];
      sums.nll_reference -= log_p[next];
      sums.kl += KlDivergence(log_p, log_q);
      ++sums.predictions;
      if (ref.argmax[static_cast<size_t>(p)] == ArgMax(logits.row(row).data(), vocab)) ++sums.agree;
    }
    ++row;
  }
}

}  // namespace

absl::StatusOr<ReferencePredictions> Predict(const LlamaModel& reference,
                                             std::span<const TokenSequence> sequences,
                                             const EvalOptions& options) {
  RETURN_IF_ERROR(CheckInputs(reference, sequences, nullptr));
  const auto batches = MakeBatches(sequences, options.batch_tokens);
  const std::vector<int64_t> starts = BatchStarts(batches);
  ReferencePredictions out;
  out.vocab = reference.config().vocab_size;
  out.predictions = starts.back();
  out.log_p.resize(static_cast<size_t>(out.predictions * out.vocab));
  out.argmax.resize(static_cast<size_t>(out.predictions));
  std::vector<double> nll(batches.size(), 0.0);
  std::vector<absl::Status> status(batches.size());
  ParallelFor(static_cast<int64_t>(batches.size()), options.threads, [&](int64_t b) {
    absl::StatusOr<RowMatrix> logits = reference.Forward(batches[b]);
    if (!logits.ok()) {
      status[b] = logits.status();
      return;
    }
    std::vector<double> log_p;
    Eigen::Index row = 0;
    int64_t p = starts[b];
    for (const TokenSequence& seq : batches[b]) {
      for (size_t pos = 0; pos + 1 < seq.size(); ++pos, ++row, ++p) {
        LogSoftmax(logits->row(row).data(), out.vocab, log_p);
        nll[b] -= log_p[static_cast<size_t>(seq[pos + 1])];
        std::copy(log_p.begin(), log_p.end(), out.log_p.begin() + p * out.vocab);
        out.argmax[static_cast<size_t>(p)] = ArgMax(logits->row(row).data(), out.vocab);
      }
      ++row;
    }
  });
  double total = 0;
  for (size_t b = 0; b < batches.size(); ++b) {
    RETURN_IF_ERROR(status[b]);
    total += nll[b];
  }
  out.nll = total / static_cast<double>(out.predictions);
  return out;
}

absl::StatusOr<EvalResult> Evaluate(const LlamaModel& model,
                                    std::span<const TokenSequence> sequences,
                                    const ReferencePredictions& reference,
                                    const EvalOptions& options) {
  RETURN_IF_ERROR(CheckInputs(model, sequences, nullptr));
  const auto batches = MakeBatches(sequences, options.batch_tokens);
  const std::vector<int64_t> starts = BatchStarts(batches);
  if (reference.vocab != model.config().vocab_size || reference.predictions != starts.back()) {
    return absl::InvalidArgumentError(
        "cached reference predictions do not match these sequences or this vocabulary");
  }
  std::vector<Sums> parts(batches.size());
  std::vector<absl::Status> status(batches.size());
  ParallelFor(static_cast<int64_t>(batches.size()), options.threads, [&](int64_t b) {
    absl::StatusOr<RowMatrix> logits = model.Forward(batches[b]);
    if (!logits.ok()) {
      status[b] = logits.status();
      return;
    }
    AccumulateCached(batches[b], *logits, reference, starts[b], parts[b]);
  });
  ASSIGN_OR_RETURN(const Sums sums, AddInOrder(parts, status));
  EvalResult r = ToResult(sums, sequences.size(), /*compared=*/true);
  r.nll_original = reference.nll;  // in double, as the reference model's own run
  return r;
}

std::vector<std::span<const TokenSequence>> MakeBatches(std::span<const TokenSequence> sequences,
                                                        int64_t batch_tokens) {
  std::vector<std::span<const TokenSequence>> batches;
  size_t first = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto n = static_cast<int64_t>(sequences[i].size());
    if (i > first && tokens + n > batch_tokens) {
      batches.push_back(sequences.subspan(first, i - first));
      first = i;
      tokens = 0;
    }
    tokens += n;
  }
  if (first < sequences.size()) batches.push_back(sequences.subspan(first));
  return batches;
}

absl::StatusOr<EvalResult> Evaluate(const LlamaModel& model,
                                    std::span<const TokenSequence> sequences,
                                    const LlamaModel* reference, const EvalOptions& options) {
  RETURN_IF_ERROR(CheckInputs(model, sequences, reference));
  // Batches run in parallel, each into its own sums, added in batch order:
  // the result does not depend on the thread count.
  const auto batches = MakeBatches(sequences, options.batch_tokens);
  std::vector<Sums> parts(batches.size());
  std::vector<absl::Status> status(batches.size());
  ParallelFor(static_cast<int64_t>(batches.size()), options.threads, [&](int64_t b) {
    absl::StatusOr<RowMatrix> logits = model.Forward(batches[b]);
    if (!logits.ok()) {
      status[b] = logits.status();
      return;
    }
    if (reference == nullptr) {
      Accumulate(batches[b], *logits, nullptr, parts[b]);
      return;
    }
    absl::StatusOr<RowMatrix> reference_logits = reference->Forward(batches[b]);
    if (!reference_logits.ok()) {
      status[b] = reference_logits.status();
      return;
    }
    Accumulate(batches[b], *logits, &*reference_logits, parts[b]);
  });
  ASSIGN_OR_RETURN(const Sums sums, AddInOrder(parts, status));
  return ToResult(sums, sequences.size(), /*compared=*/reference != nullptr);
}

}  // namespace glvq::model
