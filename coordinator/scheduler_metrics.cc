// Scheduler::MetricsCollectables: the event metrics and the figures that
// are state — jobs and workers by state, each job's progress — computed
// under the lock at each scrape, from the same data GetJob reports.
#include <map>

#include "absl/time/clock.h"
#include "common/metrics/families.h"
#include "common/rpc/grpc_util.h"
#include "coordinator/scheduler.h"
#include "google/protobuf/descriptor.h"

namespace glvq::coordinator {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

// Finished jobs whose series stay: the newest ones, so that the series
// count stays bounded however long the coordinator runs.
constexpr size_t kFinishedJobsExported = 16;

// Label value -> count, every value of the enum present (UNSPECIFIED aside).
std::map<std::string, double> ZeroPerState(const google::protobuf::EnumDescriptor* e,
                                           const std::string& prefix) {
  std::map<std::string, double> out;
  for (int i = 0; i < e->value_count(); ++i) {
    if (e->value(i)->number() != 0) out[metrics::EnumLabel(e->value(i)->name(), prefix)] = 0;
  }
  return out;
}

MetricFamily CountFamily(const std::string& name, const std::string& help,
                         const std::map<std::string, double>& counts) {
  MetricFamily f = metrics::Family(name, help, MetricType::Gauge);
  for (const auto& [state, n] : counts) metrics::AddSample(&f, {{"state", state}}, n);
  return f;
}

// The per-job families, in the order JobFamilies::Add fills them.
struct JobFamilies {
  MetricFamily tasks_planned = metrics::Family(
      "glvq_job_tasks_planned", "Tasks in the job's plan", MetricType::Gauge);
  MetricFamily tasks_done = metrics::Family(
      "glvq_job_tasks_done_total", "Tasks of the job committed", MetricType::Counter);
  MetricFamily tasks_running = metrics::Family(
      "glvq_job_tasks_running", "Tasks of the job leased to workers now", MetricType::Gauge);
  MetricFamily weights_planned = metrics::Family(
      "glvq_job_weights_planned", "Weights the job quantizes", MetricType::Gauge);
  MetricFamily weights_done = metrics::Family(
      "glvq_job_weights_done_total", "Weights of the job's committed tasks", MetricType::Counter);
  MetricFamily start_time = metrics::Family(
      "glvq_job_start_time_seconds", "Submission time of the job, Unix seconds",
      MetricType::Gauge);
  MetricFamily bits = metrics::Family(
      "glvq_job_bits_per_weight",
      "Realised bits per weight with side information, over the committed tasks "
      "(the written model once the job succeeded)",
      MetricType::Gauge);
  MetricFamily payload_bits = metrics::Family(
      "glvq_job_payload_bits_per_weight",
      "Realised code bits per weight (payload only), over the committed tasks "
      "(the written model once the job succeeded)",
      MetricType::Gauge);

  void Add(const std::string& job_id, const v1::Job& job, const v1::Progress& p) {
    const metrics::Labels l = {{"job_id", job_id}};
    metrics::AddSample(&tasks_planned, l, p.tasks_total());
    metrics::AddSample(&tasks_done, l, p.tasks_done());
    metrics::AddSample(&tasks_running, l, p.tasks_running());
    metrics::AddSample(&weights_planned, l, static_cast<double>(p.weights_total()));
    metrics::AddSample(&weights_done, l, static_cast<double>(p.weights_done()));
    metrics::AddSample(&start_time, l,
                       absl::ToDoubleSeconds(rpc::FromProto(job.status().started_at()) -
                                             absl::UnixEpoch()));
    // Nothing committed yet: no figure rather than a made-up zero.
    if (p.weights_done() > 0) {
      metrics::AddSample(&bits, l, p.quality().total_bits_per_weight());
      metrics::AddSample(&payload_bits, l, p.quality().payload_bits_per_weight());
    }
  }

  std::vector<MetricFamily> Release() {
    return {std::move(tasks_planned), std::move(tasks_done),      std::move(tasks_running),
            std::move(weights_planned), std::move(weights_done), std::move(start_time),
            std::move(bits),          std::move(payload_bits)};
  }
};

}  // namespace

std::vector<std::shared_ptr<prometheus::Collectable>> Scheduler::MetricsCollectables() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_metrics_ == nullptr) {
    state_metrics_ = std::make_shared<metrics::CallbackCollectable>([this] { return StateMetrics(); });
  }
  return {metrics_.registry(), state_metrics_};
}

std::vector<MetricFamily> Scheduler::StateMetrics() {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = absl::Now();
  std::map<std::string, double> jobs = ZeroPerState(v1::JobState_descriptor(), "JOB_STATE_");
  std::map<std::string, double> workers =
      ZeroPerState(v1::WorkerState_descriptor(), "WORKER_STATE_");
  JobFamilies per_job;
  size_t finished_exported = 0;
  for (auto it = job_order_.rbegin(); it != job_order_.rend(); ++it) {
    const JobEntry& job = *jobs_[*it];
    ++jobs[metrics::EnumLabel(v1::JobState_Name(job.state()), "JOB_STATE_")];
    if (IsTerminal(job.state()) && finished_exported++ >= kFinishedJobsExported) continue;
    per_job.Add(*it, job.job, job.ProgressNow(now));
  }
  for (const v1::WorkerInfo& w : workers_.List()) {
    ++workers[metrics::EnumLabel(v1::WorkerState_Name(w.state()), "WORKER_STATE_")];
  }
  std::vector<MetricFamily> out = per_job.Release();
  out.push_back(CountFamily("glvq_jobs", "Jobs this coordinator knows, by state", jobs));
  out.push_back(CountFamily("glvq_workers", "Registered workers, by state", workers));
  return out;
}

}  // namespace glvq::coordinator
