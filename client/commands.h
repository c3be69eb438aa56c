// The `glvq` command-line tool: each subcommand registers itself on the
// CLI11 app and reports its outcome through the exit code.
#pragma once

#include "CLI/CLI.hpp"
#include "common/cli/standard_flags.h"  // kExitUsage (2): wrong flags or arguments

namespace glvq::cli {

// Exit codes shared by every subcommand (with kExitUsage).
inline constexpr int kExitOk = 0;
inline constexpr int kExitBadInput = 1;  // unreadable/invalid input, failed job
inline constexpr int kExitCancelled = 3;    // the job was cancelled
inline constexpr int kExitUnavailable = 4;  // coordinator unreachable / deadline exceeded

// Each Register* adds a subcommand whose callback stores its exit code in
// `*exit_code`.
void RegisterInspectCommand(CLI::App& app, int* exit_code);
void RegisterExampleModelCommand(CLI::App& app, int* exit_code);
void RegisterEvalCommand(CLI::App& app, int* exit_code);
void RegisterSampleCommand(CLI::App& app, int* exit_code);
void RegisterCalibrateCommand(CLI::App& app, int* exit_code);
void RegisterTokenizeCommand(CLI::App& app, int* exit_code);
void RegisterGenerateCommand(CLI::App& app, int* exit_code);
void RegisterFinetuneCommand(CLI::App& app, int* exit_code);
void RegisterDequantizeCommand(CLI::App& app, int* exit_code);
void RegisterExportCommand(CLI::App& app, int* exit_code);
void RegisterValidateCommand(CLI::App& app, int* exit_code);
void RegisterPlanCommand(CLI::App& app, int* exit_code);
// submit, status, watch, cancel, list, workers (client/service_commands.cc).
void RegisterServiceCommands(CLI::App& app, int* exit_code);
void RegisterQuantizeCommand(CLI::App& app, int* exit_code);

}  // namespace glvq::cli
