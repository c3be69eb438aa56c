// glvq: client and local tools for the glvq quantization service.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "client/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"glvq: compress LLM weights to 1-4 bits per weight"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "glvq 0.1.0");
  int exit_code = glvq::cli::kExitOk;
  glvq::cli::RegisterInspectCommand(app, &exit_code);
  glvq::cli::RegisterExampleModelCommand(app, &exit_code);
  glvq::cli::RegisterEvalCommand(app, &exit_code);
  glvq::cli::RegisterSampleCommand(app, &exit_code);
  glvq::cli::RegisterCalibrateCommand(app, &exit_code);
  glvq::cli::RegisterDequantizeCommand(app, &exit_code);
  glvq::cli::RegisterExportCommand(app, &exit_code);
  glvq::cli::RegisterValidateCommand(app, &exit_code);
  glvq::cli::RegisterPlanCommand(app, &exit_code);
  glvq::cli::RegisterServiceCommands(app, &exit_code);
  glvq::cli::RegisterQuantizeCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and usage hint
    return glvq::cli::kExitUsage;
  }
  return exit_code;
}
