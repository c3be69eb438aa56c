// `glvq-bench scaling` shrunk to seconds: every section runs its jobs to
// success through real coordinator and worker processes (bench-engine
// workers included) and prints one JSON row per configuration. Timings
// are not checked, only that the rows are there and consistent.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

using json = nlohmann::json;

TEST(ScalingBench, EverySectionRunsItsJobsAndPrintsItsRows) {
  const std::filesystem::path bench = BinDir() / "glvq-bench";
  if (!std::filesystem::exists(bench)) GTEST_SKIP() << "glvq-bench not built";
  const CommandResult r = RunCommand(
      bench.string() +
      " scaling --json --cpu-workers 1 2 --cpu-layers 1 --cpu-hidden 64 --cpu-repeats 1"
      " --bench-workers 1 3 --rounds 2 --task-seconds 0.05"
      " --stream-rows 64 --stream-cols 256 --stream-repeats 2");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<json> rows;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 2u + 2u + 3u) << r.out;

  EXPECT_EQ(rows[0]["section"], "cpu");
  EXPECT_EQ(rows[1]["workers"], 2);
  EXPECT_EQ(rows[0]["weights"], rows[1]["weights"]);
  EXPECT_EQ(rows[0]["speedup"], 1.0);

  EXPECT_EQ(rows[2]["section"], "coordinator");
  EXPECT_EQ(rows[3]["tasks"], 6) << "rounds x workers";
  for (int i : {2, 3}) {
    // Bench tasks are padded to 0.05 s: two rounds cannot beat 0.1 s.
    EXPECT_GE(rows[i]["seconds"].get<double>(), 0.1);
    EXPECT_GT(rows[i]["grant_p50_ms"].get<double>(), 0);
  }

  EXPECT_EQ(rows[4]["stream"], "fetch");
  EXPECT_EQ(rows[4]["bytes"], 64 * 256 * 2) << "the BF16 weight";
  EXPECT_EQ(rows[5]["stream"], "upload");
  EXPECT_EQ(rows[6]["stream"], "upload+commit");
  EXPECT_EQ(rows[5]["bytes"], rows[6]["bytes"]);
}

}  // namespace
}  // namespace glvq::testing
