// `glvq example-model --out DIR`: writes the synthetic Llama-shaped model the
// quickstart quantizes (see common/synthetic/example_model.h).
#include <iostream>
#include <map>
#include <string>

#include "client/commands.h"
#include "common/base/one_line.h"
#include "common/synthetic/example_model.h"

namespace glvq::cli {

void RegisterExampleModelCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "example-model", "Write a small synthetic Llama-shaped model (LLM-like weight statistics)");
  struct Args {
    std::string out;
    ExampleModelOptions options;
    std::string dtype = "BF16";
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--out", args->out, "Directory to create")->required();
  cmd->add_option("--seed", args->options.seed, "Random seed")->capture_default_str();
  cmd->add_option("--hidden", args->options.hidden, "Hidden size")->capture_default_str();
  cmd->add_option("--intermediate", args->options.intermediate, "MLP size")->capture_default_str();
  cmd->add_option("--layers", args->options.layers, "Decoder layers")->capture_default_str();
  cmd->add_option("--heads", args->options.heads, "Attention heads")->capture_default_str();
  cmd->add_option("--kv-heads", args->options.kv_heads, "Key/value heads")->capture_default_str();
  cmd->add_option("--vocab", args->options.vocab, "Vocabulary size")->capture_default_str();
  cmd->add_option("--dtype", args->dtype, "Storage dtype")
      ->check(CLI::IsMember({"F32", "F16", "BF16"}))
      ->capture_default_str();
  cmd->callback([args, exit_code] {
    args->options.dtype = *ParseDType(args->dtype);
    if (absl::Status s = WriteExampleModel(args->out, args->options); !s.ok()) {
      std::cerr << "glvq example-model: " << ErrorLine(s) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    std::cout << "wrote example model to " << args->out << "\n";
  });
}

}  // namespace glvq::cli
