// The "Examples:" footer of each glvq subcommand's --help: the commands a
// person types first, with real flags and files named as the docs name them.
#pragma once

#include "CLI/CLI.hpp"

namespace glvq::cli {

// Sets the footer of every subcommand of `app` that has examples.
void AddExamples(CLI::App& app);

}  // namespace glvq::cli
