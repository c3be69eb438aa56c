// A real Prometheus (Debian's `prometheus`) scrapes a glvq-coordinator and
// a glvq-worker process while they run a job on stories260K; its HTTP API
// must show the job's progress counters reach the plan, and it must accept
// every query of the Grafana dashboard (deploy/grafana/). Without the
// prometheus binary the test is skipped, except under CI ($CI set), where
// that is a failure (.ci/run installs it).
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/support/child_process.h"
#include "tests/support/metrics_support.h"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Bin(const std::string& name) { return (BinDir() / name).string(); }

// The value of an instant query that has exactly one series; nullopt while
// it has none (not scraped yet) or the query fails.
std::optional<double> Query(int port, const std::string& promql) {
  const HttpResponse r = HttpGet(port, "/api/v1/query?query=" + UrlEncode(promql));
  if (r.status != 200) return std::nullopt;
  const json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || j.value("status", "") != "success") return std::nullopt;
  const json& result = j["data"]["result"];
  if (!result.is_array() || result.size() != 1) return std::nullopt;
  return std::stod(result[0]["value"][1].get<std::string>());
}

// Every query of the dashboard, its Grafana variables replaced.
std::vector<std::string> DashboardQueries(const std::string& job_id) {
  std::ifstream in(std::string(GLVQ_SOURCE_DIR) + "/deploy/grafana/glvq-job.json");
  const json dashboard = json::parse(in, nullptr, false);
  std::vector<std::string> out;
  for (const json& panel : dashboard.value("panels", json::array())) {
    for (const json& target : panel.value("targets", json::array())) {
      std::string expr = target.value("expr", "");
      for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
               {"$__rate_interval", "1m"}, {"$__range", "5m"}, {"$job", job_id}}) {
        for (size_t at; (at = expr.find(var)) != std::string::npos;) {
          expr.replace(at, var.size(), value);
        }
      }
      out.push_back(expr);
    }
  }
  return out;
}

class PrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Stories260KDir() / "model.safetensors")) GTEST_SKIP() << "no fixture";
    prometheus_ = std::string(absl::StripAsciiWhitespace(
        RunCommand("command -v prometheus").out));
    if (prometheus_.empty()) {
      if (std::getenv("CI") != nullptr) FAIL() << "prometheus is not installed (CI)";
      GTEST_SKIP() << "prometheus is not installed (scripts/install-deps.sh --with-services)";
    }
  }

  // Starts a glvq binary serving metrics on a free port; returns that port.
  int StartWithMetrics(const std::string& name, std::vector<std::string> argv,
                       std::unique_ptr<ChildProcess>* process) {
    const fs::path port_file = dir_ / (name + ".metrics-port");
    argv.insert(argv.begin(), Bin(name));
    for (const std::string& a : {std::string("--metrics-listen"), std::string("127.0.0.1:0"),
                                 std::string("--metrics-port-file"), port_file.string()}) {
      argv.push_back(a);
    }
    *process = StartChild(argv, dir_ / (name + ".log"));
    return WaitForPortFile(port_file);
  }

  ScratchDir dir_;
  std::string prometheus_;
};

TEST_F(PrometheusTest, ScrapesAJobsProgressToItsEnd) {
  std::unique_ptr<ChildProcess> coordinator, worker;
  const int coordinator_metrics = StartWithMetrics(
      "glvq-coordinator",
      {"--listen", "127.0.0.1:0", "--state-dir", (dir_ / "state").string(), "--port-file",
       (dir_ / "port").string()},
      &coordinator);
  const std::string address = "127.0.0.1:" + std::to_string(WaitForPortFile(dir_ / "port"));
  const int worker_metrics =
      StartWithMetrics("glvq-worker", {"--coordinator", address}, &worker);
  ASSERT_GT(coordinator_metrics, 0);
  ASSERT_GT(worker_metrics, 0);

  const int port = FreeLoopbackPort();
  WriteFile(dir_ / "prometheus.yml",
            "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: glvq-coordinator\n"
            "    static_configs: [{targets: ['127.0.0.1:" +
                std::to_string(coordinator_metrics) +
                "']}]\n"
                "  - job_name: glvq-worker\n"
                "    static_configs: [{targets: ['127.0.0.1:" +
                std::to_string(worker_metrics) + "']}]\n");
  const std::unique_ptr<ChildProcess> prometheus =
      StartChild({prometheus_, "--config.file=" + (dir_ / "prometheus.yml").string(),
                  "--storage.tsdb.path=" + (dir_ / "tsdb").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
                 dir_ / "prometheus.log");

  WriteJobYaml(Stories260KJob(Stories260KDir(), dir_ / "out", 100 << 10), dir_ / "job.yaml");
  const CommandResult submitted = RunCommand(Bin("glvq") + " submit " +
                                             (dir_ / "job.yaml").string() +
                                             " --json --coordinator " + address);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const json job = json::parse(submitted.out, nullptr, false);
  const std::string id = job.value("id", "");
  const double tasks = job["status"]["plan"].value("tasks", 0.0);
  ASSERT_FALSE(id.empty());
  ASSERT_GT(tasks, 1);

  // Prometheus finds new targets on a ~5 s cycle, then scrapes every second.
  const std::string selector = "{job_id=\"" + id + "\"}";
  std::optional<double> done, planned, committed;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    done = Query(port, "glvq_job_tasks_done_total" + selector);
    planned = Query(port, "glvq_job_tasks_planned" + selector);
    committed = Query(port, "sum(glvq_worker_tasks_total{outcome=\"committed\"})");
    if (done == tasks && planned == tasks && committed == tasks) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(planned, tasks);
  EXPECT_EQ(done, tasks);
  EXPECT_EQ(committed, tasks);
  EXPECT_EQ(Query(port, "count(up == 1)"), 2);
  EXPECT_EQ(Query(port, "count(glvq_build_info)"), 2);
  const std::optional<double> weights = Query(port, "glvq_job_weights_planned" + selector);
  EXPECT_GT(weights.value_or(0), 0);
  EXPECT_EQ(Query(port, "glvq_job_weights_done_total" + selector), weights);

  const std::vector<std::string> queries = DashboardQueries(id);
  EXPECT_GE(queries.size(), 10u);
  for (const std::string& q : queries) {
    const HttpResponse r = HttpGet(port, "/api/v1/query?query=" + UrlEncode(q));
    EXPECT_EQ(r.status, 200) << q << "\n" << r.body;
    EXPECT_EQ(json::parse(r.body, nullptr, false).value("status", ""), "success") << q;
  }

  prometheus->Signal(SIGTERM);
  EXPECT_EQ(prometheus->Wait(), 0);
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(), 0);
  coordinator->Signal(SIGTERM);
  EXPECT_EQ(coordinator->Wait(), 0);
}

}  // namespace
}  // namespace glvq::testing
