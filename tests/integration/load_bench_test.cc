// `glvq-bench load` shrunk to seconds: a few WatchJob streams and
// bench-engine workers on one job, through real coordinator and worker
// processes. Timings are not checked, only that the JSON row is there and
// consistent with what was asked.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

TEST(LoadBench, WatchersAndWorkersFollowOneJobAndTheRowIsConsistent) {
  const std::filesystem::path bench = BinDir() / "glvq-bench";
  if (!std::filesystem::exists(bench)) GTEST_SKIP() << "glvq-bench not built";
  constexpr int kWatchers = 3, kWorkers = 2;
  constexpr double kSeconds = 2, kTaskSeconds = 0.1;
  const CommandResult r =
      RunCommand(bench.string() + " load --json --watchers " + std::to_string(kWatchers) +
                 " --workers " + std::to_string(kWorkers) + " --seconds " +
                 std::to_string(kSeconds) + " --task-seconds " + std::to_string(kTaskSeconds));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(r.out.find('\n'), r.out.size() - 1) << "one row: " << r.out;
  const nlohmann::json row = nlohmann::json::parse(r.out);

  EXPECT_EQ(row["watchers"], kWatchers) << row.dump();
  EXPECT_EQ(row["workers"], kWorkers) << row.dump();
  EXPECT_EQ(row["seconds"], kSeconds) << row.dump();
  EXPECT_EQ(row["task_seconds"], kTaskSeconds) << row.dump();
  EXPECT_EQ(row["watchers_failed"], 0) << row.dump();

  // The job has workers x (window / task time + 5) tasks, enough to outlast
  // the window; the workers commit some of them in it and every commit
  // reaches the watchers.
  const int planned = kWorkers * static_cast<int>(std::ceil(kSeconds / kTaskSeconds) + 5);
  EXPECT_GT(row["tasks_committed"].get<int>(), 0) << row.dump();
  EXPECT_LT(row["tasks_committed"].get<int>(), planned) << row.dump();
  EXPECT_GT(row["events"].get<uint64_t>(), 0u) << row.dump();

  // The one client alternates GetJob and ListWorkers, GetJob first.
  const int get_calls = row["get_job_calls"], list_calls = row["list_workers_calls"];
  EXPECT_GE(list_calls, 1) << row.dump();
  EXPECT_TRUE(get_calls == list_calls || get_calls == list_calls + 1) << row.dump();
  for (const std::string call : {"get_job", "list_workers"}) {
    const double p50 = row[call + "_p50_ms"], p99 = row[call + "_p99_ms"];
    EXPECT_GT(p50, 0) << call << " " << row.dump();
    EXPECT_LE(p50, p99) << call << " " << row.dump();
  }

  EXPECT_GT(row["rss_idle_mb"].get<double>(), 0) << row.dump();
  EXPECT_GT(row["rss_end_mb"].get<double>(), 0) << row.dump();
  EXPECT_GE(row["rss_max_mb"].get<double>(), row["rss_end_mb"].get<double>()) << row.dump();
}

}  // namespace
}  // namespace glvq::testing
