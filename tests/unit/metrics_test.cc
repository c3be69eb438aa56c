// The exported metrics (docs/operations.md, "Metrics reference"): the names
// follow the conventions, the reference documents exactly the exported
// names, and after a job with a reported failure and an expired lease the
// figures equal the job's own.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "absl/time/clock.h"
#include "tests/support/metrics_support.h"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_model.h"

namespace glvq::testing {
namespace {

bool EndsWithAny(const std::string& name, const std::vector<std::string>& suffixes) {
  for (const std::string& s : suffixes) {
    if (name.ends_with(s)) return true;
  }
  return false;
}

// The glvq_* names in the first column of docs/operations.md's metrics table.
std::set<std::string> DocumentedNames() {
  std::ifstream in(std::string(GLVQ_SOURCE_DIR) + "/docs/operations.md");
  std::string line;
  bool in_section = false;
  std::set<std::string> names;
  const std::regex row(R"(^\| `(glvq_[a-z0-9_]+)`)");
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) in_section = line == "## Metrics reference";
    std::smatch m;
    if (in_section && std::regex_search(line, m, row)) names.insert(m[1]);
  }
  return names;
}

TEST(MetricNames, FollowTheConventions) {
  ScratchDir dir;
  const Exposition e = ScrapeIdleService(dir / "state");
  int glvq_families = 0;
  for (const auto& [name, type] : e.types) {
    if (name.starts_with("exposer_")) continue;  // prometheus-cpp's own scrape statistics
    ++glvq_families;
    EXPECT_TRUE(name.starts_with("glvq_")) << name;
    EXPECT_FALSE(e.help.at(name).empty()) << name;
    EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << name << " " << type;
    EXPECT_EQ(type == "counter", name.ends_with("_total")) << name << " " << type;
    if (type == "histogram") {
      EXPECT_TRUE(EndsWithAny(name, {"_seconds", "_bytes", "_ratio", "_decibels"})) << name;
    }
    if (name.find("bytes") != std::string::npos) {
      EXPECT_TRUE(EndsWithAny(name, {"_bytes", "_bytes_total"})) << name;
    }
    if (name.find("time") != std::string::npos || name.find("duration") != std::string::npos) {
      EXPECT_TRUE(EndsWithAny(name, {"_seconds", "_seconds_total"})) << name;
    }
  }
  EXPECT_GE(glvq_families, 20);
  // Bounded label sets: nothing per task, tensor or lease; `job` would clash
  // with Prometheus' own target label.
  const std::set<std::string> forbidden = {"job", "task", "task_id", "tensor", "lease_id",
                                           "instance"};
  for (const MetricSample& s : e.samples) {
    for (const auto& [label, value] : s.labels) EXPECT_FALSE(forbidden.contains(label)) << s.name;
  }
}

TEST(MetricNames, TheReferenceDocumentsExactlyTheExportedNames) {
  ScratchDir dir;
  const Exposition e = ScrapeIdleService(dir / "state");
  std::set<std::string> exported;
  for (const auto& [name, type] : e.types) {
    if (name.starts_with("glvq_")) exported.insert(name);
  }
  EXPECT_EQ(DocumentedNames(), exported);
}

// A coordinator, a job on the tiny model, a hand-driven worker that fails
// one task and abandons another, then a real worker that streams its inputs.
class MetricsFigures : public ::testing::Test {
 protected:
  void SetUp() override { WriteTinyModel(dir_ / "model"); }
  ScratchDir dir_;
};

TEST_F(MetricsFigures, EqualTheJobsOwnAfterAFailureAndAnExpiredLease) {
  // Short leases, so that the abandoned one expires soon; long enough that
  // the real worker's heartbeats (every lease / 3) keep its own on a busy machine.
  ServiceHarness harness(dir_ / "state", absl::Seconds(2));
  const auto id = harness.Submit(Stories260KJob(dir_ / "model", dir_ / "out"));
  ASSERT_TRUE(id.ok()) << id.status();
  worker::WorkerOptions options;
  options.hostname = "metrics-test";
  options.shared_paths.clear();  // every input over FetchTensor
  options.pull_wait = absl::Milliseconds(300);
  worker::Worker worker(harness.channel(), options);
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables =
      harness.server().scheduler().MetricsCollectables();
  for (auto& c : worker.MetricsCollectables()) collectables.push_back(std::move(c));
  const ServedMetrics served(std::move(collectables));

  RawWorker raw(harness.channel());
  const auto failed = raw.Pull();
  ASSERT_TRUE(failed.has_value());
  ASSERT_TRUE(raw.ReportFailure(*failed, absl::StatusCode::kUnavailable, "test").ok());
  ASSERT_TRUE(raw.Pull().has_value());  // abandoned: its lease expires
  for (int i = 0; i < 200 && ScrapeShared().Sum("glvq_lease_expiries_total") == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::thread run([&worker] { (void)worker.Run(); });
  const v1::Job job = harness.WaitDone(*id);
  worker.Stop();
  run.join();
  ASSERT_EQ(job.status().state(), v1::JOB_STATE_SUCCEEDED) << job.status().error_message();

  const Exposition e = ScrapeShared();
  const v1::Progress& p = job.status().progress();
  const std::map<std::string, std::string> this_job = {{"job_id", *id}};
  EXPECT_EQ(e.Sum("glvq_job_tasks_planned", this_job), p.tasks_total());
  EXPECT_EQ(e.Sum("glvq_job_tasks_done_total", this_job), p.tasks_total());
  EXPECT_EQ(e.Sum("glvq_job_tasks_running", this_job), 0);
  EXPECT_EQ(e.Sum("glvq_job_weights_planned", this_job), p.weights_total());
  EXPECT_EQ(e.Sum("glvq_job_weights_done_total", this_job), p.weights_total());
  // The text format carries 16 significant digits.
  EXPECT_NEAR(e.Sum("glvq_job_start_time_seconds", this_job),
              static_cast<double>(job.status().started_at().seconds()) +
                  job.status().started_at().nanos() * 1e-9,
              1e-5);
  EXPECT_GT(p.quality().total_bits_per_weight(), p.quality().payload_bits_per_weight());
  EXPECT_NEAR(e.Sum("glvq_job_bits_per_weight", this_job), p.quality().total_bits_per_weight(),
              1e-12);
  EXPECT_NEAR(e.Sum("glvq_job_payload_bits_per_weight", this_job),
              p.quality().payload_bits_per_weight(), 1e-12);
  EXPECT_EQ(e.Sum("glvq_jobs", {{"state", "succeeded"}}), 1);
  EXPECT_EQ(e.Sum("glvq_jobs"), 1);

  // The two hand-driven leases, then one per task.
  EXPECT_EQ(e.Sum("glvq_task_leases_total"), p.tasks_total() + 2);
  EXPECT_EQ(e.Sum("glvq_task_retries_total"), 2);
  EXPECT_EQ(p.task_retries(), 2u);
  EXPECT_EQ(e.Sum("glvq_lease_expiries_total"), 1);
  EXPECT_EQ(e.Sum("glvq_task_failures_total", {{"reason", "lease_expired"}}), 1);
  EXPECT_EQ(e.Sum("glvq_task_failures_total", {{"reason", "unavailable"}}), 1);
  EXPECT_EQ(e.Sum("glvq_task_failures_total"), 2);
  EXPECT_EQ(e.Sum("glvq_task_duration_seconds_count", {{"backend", "cpu"}}), p.tasks_total());
  EXPECT_EQ(e.Sum("glvq_task_duration_seconds_count", {{"backend", "cuda"}}), 0);
  EXPECT_EQ(e.Sum("glvq_task_proxy_loss_ratio_count"), p.tasks_total());
  EXPECT_EQ(e.Sum("glvq_task_sqnr_decibels_count"), p.tasks_total());
  EXPECT_EQ(e.Sum("glvq_task_sqnr_decibels_bucket", {{"le", "+Inf"}}), p.tasks_total());

  // Every byte the coordinator streamed, the worker streamed: the inputs
  // (F32 weights) and the result payloads, each exactly once.
  EXPECT_EQ(e.Sum("glvq_stream_bytes_total", {{"direction", "fetch"}}), p.bytes_read());
  EXPECT_EQ(e.Sum("glvq_worker_stream_bytes_total", {{"direction", "fetch"}}), p.bytes_read());
  EXPECT_EQ(e.Sum("glvq_stream_bytes_total", {{"direction", "upload"}}), p.bytes_written());
  EXPECT_EQ(e.Sum("glvq_worker_stream_bytes_total", {{"direction", "upload"}}),
            p.bytes_written());

  EXPECT_EQ(e.Sum("glvq_worker_tasks_total", {{"outcome", "committed"}}), p.tasks_total());
  EXPECT_EQ(e.Sum("glvq_worker_tasks_total"), p.tasks_total());
  EXPECT_EQ(e.Sum("glvq_worker_weights_total"), p.weights_total());
  EXPECT_EQ(e.Sum("glvq_worker_state", {{"state", "draining"}}), 1);  // stopped
  EXPECT_EQ(e.Sum("glvq_worker_state"), 1);
  EXPECT_EQ(e.Sum("glvq_worker_gpu_memory_used_bytes"), 0);  // the CPU backend
  // The hand-driven worker never sent a heartbeat; the real one deregistered.
  EXPECT_EQ(e.Sum("glvq_workers", {{"state", "lost"}}), 1);
  EXPECT_EQ(e.Sum("glvq_workers"), 1);
}

}  // namespace
}  // namespace glvq::testing
