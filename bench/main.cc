// glvq-bench: benchmarks that print tables (measured, not assumed: every
// quality or speed claim in docs/ is a row printed here). One subcommand per
// benchmark; add one with a Register* line.
#include <optional>

#include "CLI/CLI.hpp"
#include "bench/benchmarks.h"
#include "common/cli/standard_flags.h"

int main(int argc, char** argv) {
  CLI::App app{"glvq benchmarks: each subcommand prints a table (or JSON rows)"};
  app.require_subcommand(1);
  glvq::bench::RegisterPackBench(app);
  glvq::bench::RegisterQualityBench(app);
  glvq::bench::RegisterSpeedBench(app);
  glvq::bench::RegisterModelBench(app);
  glvq::bench::RegisterScalingBench(app);
  glvq::bench::RegisterChaosBench(app);
  glvq::bench::RegisterLoadBench(app);
  glvq::bench::RegisterShapesBench(app);
  glvq::bench::RegisterDecodeBench(app);
  glvq::bench::RegisterPipelineBench(app);
  glvq::cli::AddStandardFlags(app, "glvq-bench");
  if (const std::optional<int> code = glvq::cli::ParseCommandLine(app, argc, argv)) return *code;
  return 0;
}
