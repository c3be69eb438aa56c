// `glvq sample --model DIR --out FILE [--sequences N] [--length L] [--seed S]`:
// a token file of sequences sampled from the model itself at temperature 1
// (model/sampling.h): evaluation text for `glvq eval` (or calibration text
// for `glvq calibrate`) when there is no dataset at hand.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/one_line.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "model/llama.h"
#include "model/sampling.h"
#include "model/tokens.h"

namespace glvq::cli {
namespace {

struct SampleArgs {
  std::string model;
  std::string out;
  model::SampleOptions options;
};

absl::Status RunSample(const SampleArgs& a) {
  std::error_code ec;
  if (std::filesystem::exists(a.out, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(a.out, ": already exists; choose a new file"));
  }
  ASSIGN_OR_RETURN(const model::LlamaModel m, model::LlamaModel::LoadSafetensors(a.model));
  ASSIGN_OR_RETURN(const std::vector<model::TokenSequence> sequences,
                   model::SampleSequences(m, a.options));
  const model::SampleOptions& o = a.options;
  // No paths: the file is a function of the model's contents and the options.
  const std::vector<std::string> comments = {
      absl::StrFormat("glvq sample: %d sequences x %d token ids sampled from the model at "
                      "temperature 1 (seed %d), each starting with BOS=%d",
                      o.sequences, o.length, o.seed, m.config().bos_token_id)};
  return AtomicWriteString(a.out, model::FormatTokens(sequences, comments));
}

}  // namespace

void RegisterSampleCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "sample",
      "Write a token file of sequences sampled from the model itself (temperature 1, fixed "
      "seed): data-free evaluation text for glvq eval");
  auto args = std::make_shared<SampleArgs>();
  cmd->add_option("--model", args->model, "Model directory (Llama, safetensors)")->required();
  cmd->add_option("--out", args->out, "Token file to create (must not exist)")->required();
  cmd->add_option("--sequences", args->options.sequences, "Number of sequences")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--length", args->options.length, "Tokens per sequence, BOS included")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--seed", args->options.seed, "Random seed")->capture_default_str();
  cmd->callback([args, exit_code] {
    if (absl::Status s = RunSample(*args); !s.ok()) {
      std::cerr << "glvq sample: " << ErrorLine(s) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    std::cout << absl::StrFormat("wrote %d sequences x %d tokens sampled from %s to %s\n",
                                 args->options.sequences, args->options.length, args->model,
                                 args->out);
  });
}

}  // namespace glvq::cli
