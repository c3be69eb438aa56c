// `glvq-bench chaos` shrunk to seconds: workers SIGKILLed every 0.5 s and
// the coordinator killed and restarted once, and the job still ends with
// output byte-identical to a clean run (the bench compares every file).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

TEST(ChaosBench, KilledWorkersAndCoordinatorLeaveTheOutputIdentical) {
  const std::filesystem::path bench = BinDir() / "glvq-bench";
  if (!std::filesystem::exists(bench)) GTEST_SKIP() << "glvq-bench not built";
  const CommandResult r = RunCommand(bench.string() +
                                     " chaos --json --trials 1 --workers 4 --layers 2"
                                     " --task-delay-ms 500 --kill-every-seconds 0.5 --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json row = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_TRUE(row["succeeded"].get<bool>()) << row.dump();
  EXPECT_TRUE(row["identical"].get<bool>()) << row.dump();
  EXPECT_EQ(row["coordinator_restarts"], 1) << row.dump();
  EXPECT_GE(row["workers_killed"].get<int>(), 1) << row.dump();
}

}  // namespace
}  // namespace glvq::testing
