// glvq: client and local tools for the glvq quantization service.
#include <cstdio>
#include <optional>

#include "CLI/CLI.hpp"
#include "client/commands.h"
#include "client/examples.h"
#include "common/cli/standard_flags.h"

int main(int argc, char** argv) {
  CLI::App app{"glvq: compress LLM weights to 1-4 bits per weight"};
  app.require_subcommand(1);
  glvq::cli::AddStandardFlags(app, "glvq");
  int exit_code = glvq::cli::kExitOk;
  glvq::cli::RegisterInspectCommand(app, &exit_code);
  glvq::cli::RegisterExampleModelCommand(app, &exit_code);
  glvq::cli::RegisterEvalCommand(app, &exit_code);
  glvq::cli::RegisterSampleCommand(app, &exit_code);
  glvq::cli::RegisterCalibrateCommand(app, &exit_code);
  glvq::cli::RegisterTokenizeCommand(app, &exit_code);
  glvq::cli::RegisterGenerateCommand(app, &exit_code);
  glvq::cli::RegisterFinetuneCommand(app, &exit_code);
  glvq::cli::RegisterDequantizeCommand(app, &exit_code);
  glvq::cli::RegisterExportCommand(app, &exit_code);
  glvq::cli::RegisterValidateCommand(app, &exit_code);
  glvq::cli::RegisterPlanCommand(app, &exit_code);
  glvq::cli::RegisterServiceCommands(app, &exit_code);
  glvq::cli::RegisterQuantizeCommand(app, &exit_code);
  glvq::cli::AddExamples(app);
  if (const std::optional<int> code = glvq::cli::ParseCommandLine(app, argc, argv)) return *code;
  return exit_code;
}
