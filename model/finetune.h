// Fine-tuning of a quantized model's free parameters: the gains its packed
// tensors already store and its RMSNorm weights, moved by Adam to minimise
// KL(original ‖ quantized) of the next-token distributions on calibration
// text. The codes stay as they are and no bit is added; QuIP# and QTIP tune
// the same kind of parameters (their sign vectors and norms) for their best
// published figures. docs/algorithms.md §8 has the derivation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/packed/packed_model.h"
#include "model/llama.h"
#include "model/llama_backward.h"

namespace glvq::model {

// Bounds of the options. Memory grows with both: a window's tape holds
// layers × heads × seq_len² attention weights (SmolLM2 at 256 tokens:
// 70 MB; at 4096: 18 GB), and a step holds one gradient per window.
inline constexpr int64_t kMaxFinetuneSeqLen = 4096;
inline constexpr int64_t kMaxFinetuneWindowsPerStep = 256;

struct FinetuneOptions {
  int64_t steps = 200;           // Adam steps
  int64_t seq_len = 256;         // tokens per training window
  int64_t windows_per_step = 2;  // windows averaged per step (run in parallel)
  double learning_rate = 1e-3;   // peak; cosine decay to 0 over `steps`
  uint64_t seed = 1;             // which windows each step draws
  bool tune_norms = true;        // RMSNorm weights
  bool tune_gains = true;        // the packed tensors' row and group gains
  int threads = 0;               // 0: hardware concurrency
};

struct FinetuneReport {
  std::vector<double> kl;  // mean KL (nats/token) of each step's windows, before its update
  int64_t parameters = 0;  // tunable values
  int64_t windows = 0;     // windows available
  double seconds = 0;
};

// Called after each step with its index and mean KL.
using FinetuneProgress = std::function<void(int64_t step, double kl)>;

// Tunes `student` toward `teacher` (same config) on windows of `seq_len`
// consecutive tokens cut from `sequences` (a shorter sequence is one
// window). Deterministic for a seed, whatever the thread count.
// INVALID_ARGUMENT for options out of range, no tokens, or models that do
// not match.
absl::StatusOr<FinetuneReport> Finetune(const LlamaModel& teacher, TunableLlama& student,
                                        std::span<const TokenSequence> sequences,
                                        const FinetuneOptions& options,
                                        const FinetuneProgress& progress = nullptr);

// The tunable form of packed model `packed`: each quantized linear layer's
// weight decoded in its own basis (without its rotation), with gains that
// may move where the method stores them (trellis: rows and groups; e8p,
// glvq: groups, and rows where a glvq tensor has row_scale; rtn: both;
// pvq: rows); linear layers left unquantized are frozen.
absl::StatusOr<TunableLlama> LoadTunable(const PackedModel& packed);

// The original model a packed model was made from: its files (whose
// pass-through tensors the output copies) and its weights (against which
// the tuned tensors' quality is measured again), with the Hessians its
// proxy loss uses (nullptr: H = I, the proxy loss is the NMSE).
struct FinetuneSource {
  const SafetensorsModel& files;
  const LlamaModel& model;
  const SafetensorsModel* hessians = nullptr;
};

// Writes the packed model `packed` with `tuned`'s gains folded into its
// tensors and `tuned`'s norm weights, into `out_dir` (must not exist;
// written atomically and verified like every packed model). Every tuned
// tensor's quality figures are measured again against `source`'s weights.
// `options` and `report` are recorded in quantization_config.
// FAILED_PRECONDITION if `source`'s pass-through tensors are not those
// `packed` holds (another original).
absl::Status WriteFinetuned(const PackedModel& packed, const TunableLlama& tuned,
                            const FinetuneSource& source, const FinetuneOptions& options,
                            const FinetuneReport& report, const std::filesystem::path& out_dir);

}  // namespace glvq::model
