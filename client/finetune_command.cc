// `glvq finetune --model ORIG --packed IN --tokens FILE --out OUT`: tunes
// the gains a packed model already stores and its norm weights toward the
// original model's next-token distributions on calibration text, and
// writes the result as a new packed model (same codes, same bits).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/service_client.h"
#include "common/base/one_line.h"
#include "common/base/status_macros.h"
#include "model/finetune.h"
#include "model/tokens.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {
namespace {

struct FinetuneArgs {
  std::string model, packed, tokens, out, hessians;
  model::FinetuneOptions options;
  int64_t progress_every = 10;
  std::string output;  // --json
};

// Mean of the first (or last) tenth of the steps' KL: one step's figure is
// the noise of its windows.
double TenthMean(const std::vector<double>& kl, bool last) {
  const size_t n = std::max<size_t>(1, kl.size() / 10);
  const auto first = last ? kl.end() - static_cast<std::ptrdiff_t>(n) : kl.begin();
  return std::accumulate(first, first + static_cast<std::ptrdiff_t>(n), 0.0) /
         static_cast<double>(n);
}

absl::StatusOr<model::FinetuneReport> RunFinetune(const FinetuneArgs& a) {
  ASSIGN_OR_RETURN(const model::LlamaModel teacher, model::LlamaModel::LoadSafetensors(a.model));
  ASSIGN_OR_RETURN(const SafetensorsModel source, SafetensorsModel::Open(a.model));
  ASSIGN_OR_RETURN(const PackedModel packed, PackedModel::Open(a.packed));
  ASSIGN_OR_RETURN(model::TunableLlama student, model::LoadTunable(packed));
  ASSIGN_OR_RETURN(const std::vector<model::TokenSequence> sequences,
                   model::ReadTokenFile(a.tokens, teacher.config().vocab_size));
  const bool quiet = a.output == "json";
  const auto progress = [&](int64_t step, double kl) {
    if (!quiet && a.progress_every > 0 && (step + 1) % a.progress_every == 0) {
      std::cerr << absl::StrFormat("step %d/%d  KL %.4f\n", step + 1, a.options.steps, kl);
    }
  };
  ASSIGN_OR_RETURN(model::FinetuneReport r,
                   model::Finetune(teacher, student, sequences, a.options, progress));
  std::optional<SafetensorsModel> hessians;
  if (!a.hessians.empty()) {
    ASSIGN_OR_RETURN(hessians, SafetensorsModel::Open(a.hessians));
  }
  const model::FinetuneSource original{source, teacher, hessians ? &*hessians : nullptr};
  RETURN_IF_ERROR(model::WriteFinetuned(packed, student, original, a.options, r, a.out));
  return r;
}

}  // namespace

void RegisterFinetuneCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "finetune",
      "Tune a packed model's stored gains and norm weights toward the original model's "
      "outputs (KL on calibration text); writes a new packed model with the same codes and bits");
  auto a = std::make_shared<FinetuneArgs>();
  model::FinetuneOptions& o = a->options;
  cmd->add_option("--model", a->model, "The original model directory (Llama, safetensors)")
      ->required();
  cmd->add_option("--packed", a->packed, "The packed model made from it by glvq quantize")
      ->required();
  cmd->add_option("--tokens", a->tokens,
                  "Calibration token file (one sequence of ids per line, # comments)")
      ->required();
  cmd->add_option("--out", a->out, "Directory to create for the tuned packed model")->required();
  cmd->add_option("--hessians", a->hessians,
                  "The Hessians the packed model was quantized with (glvq calibrate): the tuned "
                  "tensors' proxy loss is measured with them (without: H = I)");
  cmd->add_option("--steps", o.steps, "Adam steps")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  cmd->add_option("--seq-len", o.seq_len, "Tokens per training window")
      ->check(CLI::Range(int64_t{2}, model::kMaxFinetuneSeqLen))
      ->capture_default_str();
  cmd->add_option("--windows-per-step", o.windows_per_step,
                  "Windows averaged per step (run in parallel)")
      ->check(CLI::Range(int64_t{1}, model::kMaxFinetuneWindowsPerStep))
      ->capture_default_str();
  cmd->add_option("--lr", o.learning_rate, "Peak learning rate (cosine decay to 0)")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the window draws")->capture_default_str();
  cmd->add_option("--threads", o.threads, "Threads (0: all usable cores); never changes results")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_flag("!--no-norms", o.tune_norms, "Keep the RMSNorm weights as they are");
  cmd->add_flag("!--no-gains", o.tune_gains, "Keep the packed tensors' gains as they are");
  cmd->add_option("--progress-every", a->progress_every, "Print the KL every N steps (0: never)")
      ->check(CLI::NonNegativeNumber);
  AddJsonOutputFlag(cmd, &a->output);
  cmd->callback([a, exit_code] {
    const auto r = RunFinetune(*a);
    if (!r.ok()) {
      std::cerr << "glvq finetune: " << ErrorLine(r.status()) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    const double first = TenthMean(r->kl, false), last = TenthMean(r->kl, true);
    if (a->output == "json") {
      nlohmann::ordered_json j;
      j["out"] = a->out;
      j["steps"] = a->options.steps;
      j["parameters"] = r->parameters;
      j["windows"] = r->windows;
      j["kl_first"] = first;
      j["kl_last"] = last;
      j["kl"] = r->kl;
      j["seconds"] = r->seconds;
      std::cout << j.dump() << "\n";
      return;
    }
    std::cout << absl::StrFormat(
        "tuned %d parameters in %d steps (%.0f s): KL %.4f -> %.4f (means of the first and last "
        "tenth of the steps); wrote %s\n",
        r->parameters, a->options.steps, r->seconds, first, last, a->out);
  });
}

}  // namespace glvq::cli
