// Subcommands of glvq-bench. Each benchmark lives in its own file and adds
// itself to the program with one Register* call in main.cc.
#pragma once

#include "CLI/CLI.hpp"

namespace glvq::bench {

// `pack`: bit packing / unpacking throughput per code width (pack_bench.cc).
void RegisterPackBench(CLI::App& app);

}  // namespace glvq::bench
