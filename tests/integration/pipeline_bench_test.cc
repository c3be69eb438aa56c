// `glvq-bench pipeline` on the stories260K fixture: one JSON row per
// (method, stage) with the keys scripts rely on, stages that add up to the
// total, and every projection weight counted. Timings are not checked.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "common/safetensors/reader.h"
#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

std::string Bench() { return (BinDir() / "glvq-bench").string(); }

TEST(PipelineBench, StagesAddUpToTheTotalForEveryMethod) {
  if (!std::filesystem::exists(Bench())) GTEST_SKIP() << "glvq-bench not built";
  if (!std::filesystem::exists(Stories260KDir() / "model.safetensors")) {
    GTEST_SKIP() << "fixture stories260K not found";
  }
  const CommandResult r = RunCommand(Bench() + " pipeline --model-dir " +
                                     Stories260KDir().string() +
                                     " --method rtn e8p --tensors 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  uint64_t expected_weights = 0;
  const SafetensorsModel model = *SafetensorsModel::Open(Stories260KDir());
  for (const std::string& name : model.tensor_names()) {
    if (name.find("_proj.weight") != std::string::npos) {
      expected_weights += model.Find(name)->shape[0] * model.Find(name)->shape[1];
    }
  }
  std::map<std::string, double> stage_sum;
  std::map<std::string, int> stages;
  std::istringstream lines(r.out);
  std::string line;
  int totals = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    for (const char* key : {"method", "stage", "cpu_seconds", "share"}) {
      ASSERT_TRUE(j.contains(key)) << key << " in " << line;
    }
    const std::string method = j["method"];
    EXPECT_GE(j["cpu_seconds"].get<double>(), 0.0) << line;
    if (j["stage"] == "total") {
      ++totals;
      EXPECT_NEAR(stage_sum[method], j["cpu_seconds"].get<double>(), 1e-9) << line;
      EXPECT_EQ(j["weights"].get<uint64_t>(), expected_weights) << line;
      EXPECT_EQ(stages[method], 8) << line;
      continue;
    }
    stage_sum[method] += j["cpu_seconds"].get<double>();
    ++stages[method];
  }
  EXPECT_EQ(totals, 2) << r.out;

  const CommandResult bad = RunCommand(Bench() + " pipeline --model-dir " +
                                       Stories260KDir().string() + " --method nope");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("unknown method nope"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace glvq::testing
