// What every glvq binary's command line has (glvq, glvq-coordinator,
// glvq-worker, glvq-bench): --version, --log-level, parse errors mapped to
// the documented exit code 2 instead of CLI11's own codes, and a "did you
// mean" for a mistyped flag or command. Header-only:
// only the binaries' main files, which link CLI11, include it.
#pragma once

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// Levenshtein distance between a and b (small strings: flag names).
inline size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word` if it is close enough to be a typo (at
// most 2 edits, or a third of the word), else empty.
inline std::string Closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

// After a parse error: "did you mean" lines for an unknown flag (among the
// long flags of the subcommand being parsed and its parents) or an unknown
// subcommand, written to stderr.
inline void SuggestCorrections(CLI::App& app, int argc, char** argv) {
  CLI::App* deepest = &app;
  std::vector<std::string> flags, commands;
  while (true) {
    for (const CLI::Option* o : deepest->get_options()) {
      for (const std::string& name : o->get_lnames()) flags.push_back("--" + name);
    }
    const std::vector<CLI::App*> chosen = deepest->get_subcommands();
    if (chosen.empty()) break;
    deepest = chosen.front();
  }
  for (const CLI::App* sub : deepest->get_subcommands({})) commands.push_back(sub->get_name());
  std::string binary = app.get_name();
  binary = binary.substr(binary.rfind('/') + 1);  // argv[0] without its directory
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::string_view name = arg.substr(0, arg.find('='));
    if (name.starts_with("--") && std::find(flags.begin(), flags.end(), name) == flags.end()) {
      if (const std::string fix = Closest(name, flags); !fix.empty()) {
        std::fprintf(stderr, "%s: unknown flag %s; did you mean %s?\n", binary.c_str(),
                     std::string(name).c_str(), fix.c_str());
      }
    } else if (!arg.starts_with("-") && deepest == &app && !commands.empty() &&
               std::find(commands.begin(), commands.end(), arg) == commands.end()) {
      if (const std::string fix = Closest(arg, commands); !fix.empty()) {
        std::fprintf(stderr, "%s: unknown command '%s'; did you mean '%s'?\n",
                     binary.c_str(), std::string(arg).c_str(), fix.c_str());
      }
      break;  // later words are that command's arguments
    }
  }
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
    SuggestCorrections(app, argc, argv);
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace glvq::cli
