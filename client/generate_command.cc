// `glvq generate --packed DIR --prompt TEXT`: text from a quantized (or
// original) model, with the model's own tokenizer.json: greedy by default,
// sampled with --temperature. The text is printed as it is generated.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/service_client.h"
#include "common/base/one_line.h"
#include "common/base/status_macros.h"
#include "common/text/tokenizer.h"
#include "model/generate.h"
#include "model/llama.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {
namespace {

struct GenerateArgs {
  std::string model, packed, tokenizer, prompt;
  model::GenerateOptions options;
  bool no_stop = false;
  std::string output;  // --json
};

struct GenerateResult {
  int64_t prompt_tokens = 0;
  model::TokenSequence tokens;
  std::string text;
  double seconds = 0;
};

// Prints the text decoded so far beyond what is already printed, holding
// back a tail that may still be an incomplete UTF-8 character.
class TextStream {
 public:
  TextStream(const text::Tokenizer& t, std::ostream* out) : tokenizer_(t), out_(out) {}
  void Add(int32_t id) {
    ids_.push_back(id);
    const std::string text = tokenizer_.Decode(ids_);
    if (out_ == nullptr || text.size() <= printed_ || text.ends_with("\xEF\xBF\xBD")) return;
    *out_ << text.substr(printed_) << std::flush;
    printed_ = text.size();
  }

 private:
  const text::Tokenizer& tokenizer_;
  std::ostream* out_;
  model::TokenSequence ids_;
  size_t printed_ = 0;
};

absl::StatusOr<GenerateResult> RunGenerate(GenerateArgs a) {
  if (a.model.empty() == a.packed.empty()) {
    return absl::InvalidArgumentError("give one of --model (original) or --packed (glvq output)");
  }
  const std::string dir = a.packed.empty() ? a.model : a.packed;
  ASSIGN_OR_RETURN(const std::unique_ptr<text::Tokenizer> tokenizer,
                   text::LoadTokenizer(a.tokenizer.empty() ? dir : a.tokenizer));
  ASSIGN_OR_RETURN(const model::LlamaModel m, a.packed.empty()
                                                  ? model::LlamaModel::LoadSafetensors(a.model)
                                                  : model::LlamaModel::LoadPacked(a.packed));
  ASSIGN_OR_RETURN(const std::vector<int32_t> prompt, tokenizer->Encode(a.prompt));
  if (!a.no_stop) a.options.stop_ids = m.config().eos_token_ids;
  GenerateResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  TextStream stream(*tokenizer, a.output == "json" ? nullptr : &std::cout);
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(r.tokens,
                   model::Generate(m, prompt, a.options, [&](int32_t id) { stream.Add(id); }));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.text = tokenizer->Decode(r.tokens);
  return r;
}

}  // namespace

void RegisterGenerateCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "generate", "Generate text from a prompt with a glvq packed model (or the original)");
  auto a = std::make_shared<GenerateArgs>();
  cmd->add_option("--packed", a->packed, "A glvq packed model directory");
  cmd->add_option("--model", a->model, "An original model directory (Llama, safetensors)");
  cmd->add_option("--prompt", a->prompt, "The text to continue")->required();
  cmd->add_option("--tokenizer", a->tokenizer,
                  "tokenizer.json or its directory (default: the model's)");
  cmd->add_option("--max-tokens", a->options.max_new_tokens, "New tokens at most")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--temperature", a->options.temperature,
                  "0: greedy (the most likely token); > 0: sampled from softmax(logits / T)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  cmd->add_option("--top-k", a->options.top_k, "Sample among the k most likely tokens (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", a->options.seed, "Seed of the sampling")->capture_default_str();
  cmd->add_flag("--no-stop", a->no_stop,
                "Do not stop at the config's eos_token_id: always --max-tokens tokens");
  AddJsonOutputFlag(cmd, &a->output);
  cmd->callback([a, exit_code] {
    const auto r = RunGenerate(*a);
    if (!r.ok()) {
      std::cerr << "glvq generate: " << ErrorLine(r.status()) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    const double rate = r->seconds > 0 ? static_cast<double>(r->tokens.size()) / r->seconds : 0;
    if (a->output == "json") {
      nlohmann::ordered_json j;
      j["text"] = r->text;
      j["prompt_tokens"] = r->prompt_tokens;
      j["new_tokens"] = r->tokens.size();
      j["tokens"] = r->tokens;
      j["seconds"] = r->seconds;
      j["tokens_per_second"] = rate;
      std::cout << j.dump() << "\n";
      return;
    }
    std::cout << "\n";
    std::cerr << absl::StrFormat("%d prompt tokens, %d new tokens, %.1f tokens/s\n",
                                 r->prompt_tokens, r->tokens.size(), rate);
  });
}

}  // namespace glvq::cli
