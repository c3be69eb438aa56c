// `glvq eval --model DIR [--packed DIR] --tokens FILE [--json]`: next-token
// NLL and perplexity of a model on a token file; with --packed, of the
// quantized model, compared with the original (KL, top-1 agreement).
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/one_line.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "common/base/status_macros.h"
#include "model/eval.h"
#include "model/llama.h"
#include "model/tokens.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {
namespace {

struct EvalArgs {
  std::string model;
  std::string packed;
  std::string tokens;
  bool json = false;
  int64_t batch_tokens = model::EvalOptions().batch_tokens;
};

absl::StatusOr<model::EvalResult> RunEval(const EvalArgs& a) {
  ASSIGN_OR_RETURN(const model::LlamaModel original, model::LlamaModel::LoadSafetensors(a.model));
  ASSIGN_OR_RETURN(const std::vector<model::TokenSequence> sequences,
                   model::ReadTokenFile(a.tokens, original.config().vocab_size));
  const model::EvalOptions options{a.batch_tokens};
  if (a.packed.empty()) return model::Evaluate(original, sequences, nullptr, options);
  ASSIGN_OR_RETURN(const model::LlamaModel quantized, model::LlamaModel::LoadPacked(a.packed));
  if (!(quantized.config() == original.config())) {
    return absl::InvalidArgumentError(
        absl::StrCat(a.packed, "/config.json does not describe the same architecture as ", a.model,
                     "/config.json"));
  }
  return model::Evaluate(quantized, sequences, &original, options);
}

void PrintJson(const model::EvalResult& r) {
  nlohmann::ordered_json j;
  j["nll"] = r.nll;
  j["ppl"] = r.ppl;
  if (r.kl.has_value()) {
    j["kl"] = *r.kl;
    j["top1"] = *r.top1;
    j["nll_original"] = *r.nll_original;
    j["ppl_original"] = std::exp(*r.nll_original);
    j["dnll"] = r.nll - *r.nll_original;
  }
  j["sequences"] = r.sequences;
  j["predictions"] = r.predictions;
  std::cout << j.dump() << "\n";
}

void PrintText(const EvalArgs& a, const model::EvalResult& r) {
  std::cout << absl::StrFormat("tokens:     %s (%d sequences, %d predicted tokens)\n", a.tokens,
                               r.sequences, r.predictions);
  if (!r.kl.has_value()) {
    std::cout << absl::StrFormat("model:      %s\nnll:        %.6f nats/token (ppl %.4f)\n",
                                 a.model, r.nll, r.ppl);
    return;
  }
  std::cout << absl::StrFormat("original:   %s: nll %.6f (ppl %.4f)\n", a.model, *r.nll_original,
                               std::exp(*r.nll_original));
  std::cout << absl::StrFormat("quantized:  %s: nll %.6f (ppl %.4f)\n", a.packed, r.nll, r.ppl);
  std::cout << absl::StrFormat("dnll:       %+.6f nats/token (quantized - original)\n",
                               r.nll - *r.nll_original);
  std::cout << absl::StrFormat("kl:         %.6f nats/token, KL(original || quantized)\n", *r.kl);
  std::cout << absl::StrFormat("top1:       %.4f (same most likely next token)\n", *r.top1);
}

}  // namespace

void RegisterEvalCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "eval",
      "Next-token NLL / perplexity of a model; with --packed, KL and top-1 agreement "
      "of the quantized model against the original");
  auto args = std::make_shared<EvalArgs>();
  cmd->add_option("--model", args->model, "Original model directory (Llama, safetensors)")
      ->required();
  cmd->add_option("--packed", args->packed, "glvq packed model of --model to evaluate");
  cmd->add_option("--tokens", args->tokens, "Token file: one sequence of ids per line, # comments")
      ->required();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->add_option("--batch-tokens", args->batch_tokens, "Tokens per forward batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([args, exit_code] {
    const absl::StatusOr<model::EvalResult> r = RunEval(*args);
    if (!r.ok()) {
      std::cerr << "glvq eval: " << ErrorLine(r.status()) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    if (args->json) {
      PrintJson(*r);
    } else {
      PrintText(*args, *r);
    }
  });
}

}  // namespace glvq::cli
