// `glvq export --packed DIR --out DIR --format gptq|gptq_v2`: a packed model
// in a standard format that other inference stacks load (docs/format.md §13).
#include <iostream>
#include <memory>
#include <string>

#include "client/commands.h"
#include "common/base/one_line.h"
#include "common/base/status_macros.h"
#include "common/packed/gptq_export.h"
#include "common/packed/packed_model.h"

namespace glvq::cli {
namespace {

struct ExportArgs {
  std::string packed;
  std::string out;
  std::string format = "gptq";
};

absl::Status RunExport(const ExportArgs& a) {
  ASSIGN_OR_RETURN(const PackedModel packed, PackedModel::Open(a.packed));
  return ExportGptq(packed, a.out, a.format == "gptq" ? GptqFormat::kV1 : GptqFormat::kV2);
}

}  // namespace

void RegisterExportCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "export", "Write a packed model in a standard format (gptq: rtn/gptq codes, no RHT)");
  cmd->footer(
      "Example:\n"
      "  glvq quantize --model M --out P --method gptq --bits 4 --rht false --rtn-variant minMax\n"
      "  glvq export --packed P --out P-gptq --format gptq\n"
      "GPTQ stores integer zero points and no rotation, so only such models export.\n"
      "gptq (v1) stores zero - 1 and so cannot hold a zero point of 0; gptq_v2 can.");
  auto args = std::make_shared<ExportArgs>();
  cmd->add_option("--packed", args->packed, "Packed model directory")->required();
  cmd->add_option("--out", args->out, "Directory to create (must not exist)")->required();
  cmd->add_option("--format", args->format,
                  "gptq (zero point − 1 stored: AutoGPTQ, vLLM, transformers) or gptq_v2 (the "
                  "zero point itself: GPTQModel; needed when a zero point is 0)")
      ->check(CLI::IsMember({"gptq", "gptq_v2"}))
      ->capture_default_str();
  cmd->callback([args, exit_code] {
    if (absl::Status s = RunExport(*args); !s.ok()) {
      std::cerr << "glvq export: " << ErrorLine(s) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    std::cout << "wrote " << args->format << " model to " << args->out << "\n";
  });
}

}  // namespace glvq::cli
