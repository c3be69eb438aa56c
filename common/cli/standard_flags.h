// What every glvq binary's command line has (glvq, glvq-coordinator,
// glvq-worker, glvq-bench): --version, --log-level, and parse errors mapped
// to the documented exit code 2 instead of CLI11's own codes. Header-only:
// only the binaries' main files, which link CLI11, include it.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "common/base/logging.h"
#include "glvq_version.h"

namespace glvq::cli {

inline constexpr int kExitUsage = 2;  // wrong flags or arguments (docs/service.md)

// Adds --version ("<binary> <version>") and --log-level to `app`. The level
// takes effect as soon as the flag is parsed, before any subcommand runs;
// without the flag, $GLVQ_LOG_LEVEL decides (default warn).
inline void AddStandardFlags(CLI::App& app, std::string_view binary) {
  app.set_version_flag("--version", std::string(binary) + " " + GLVQ_VERSION);
  app.add_option_function<std::string>(
         "--log-level",
         [](const std::string& level) { SetLogLevel(*ParseLogLevel(level)); },
         "Log threshold on stderr: error, warn, info or debug (default: $GLVQ_LOG_LEVEL, "
         "else warn)")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
}

// Parses argv into `app` (running the chosen subcommand's callback).
// nullopt: go on; otherwise the process's exit code: 0 after --help or
// --version, the code of a CLI::RuntimeError a callback threw, kExitUsage
// after a usage error (CLI11 has printed its message).
inline std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return app.exit(e);  // a subcommand's own failure, with its own exit code
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and a usage hint
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace glvq::cli
