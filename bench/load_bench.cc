// `glvq-bench load`: the coordinator under many clients, on real processes
// over loopback. One long job runs on --workers bench-engine workers
// (tasks padded to --task-seconds) while --watchers WatchJob streams follow
// it; for --seconds the bench samples the coordinator's RSS every second
// and times GetJob and ListWorkers calls from one client (20 a second).
// Then it cancels the job. Results are in docs/performance.md.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_service.h"
#include "bench/benchmarks.h"
#include "bench/scaling.h"
#include "common/base/status_macros.h"
#include "common/rpc/grpc_util.h"
#include "nlohmann/json.hpp"

namespace glvq::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct LoadOptions {
  int watchers = 100;
  int workers = 64;
  double seconds = 60;
  double task_seconds = 1;
  std::string work_dir;
  bool json = false;
};

struct LoadResult {
  int tasks_committed = 0;       // during the window
  uint64_t events = 0;           // received by all watchers during the window
  int watchers_failed = 0;       // streams that ended with an error before the cancel
  double rss_idle_mb = 0;        // workers registered, before the job
  double rss_max_mb = 0;         // during the window
  double rss_end_mb = 0;
  std::vector<double> get_job_ms, list_workers_ms;
};

// Follows the job until it ends; counts the events read into `events`.
class Watcher {
 public:
  Watcher(v1::JobService::Stub& stub, const std::string& job_id, std::atomic<uint64_t>* events)
      : thread_([this, &stub, job_id, events] {
          v1::WatchJobRequest request;
          request.set_job_id(job_id);
          auto reader = stub.WatchJob(&context_, request);
          v1::JobEvent event;
          while (reader->Read(&event)) events->fetch_add(1, std::memory_order_relaxed);
          failed_ = !reader->Finish().ok() && !cancelled_.load();
        }) {}
  ~Watcher() { Join(); }
  // Ends the stream if still open, and waits for it.
  void Join() {
    if (!thread_.joinable()) return;
    cancelled_ = true;
    context_.TryCancel();
    thread_.join();
  }
  bool failed() const { return failed_; }

 private:
  grpc::ClientContext context_;
  std::atomic<bool> cancelled_ = false;
  bool failed_ = false;
  std::thread thread_;  // last: it uses the members above
};

double TimedCall(const std::function<grpc::Status(grpc::ClientContext*)>& call, bool* ok) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(10));
  const absl::Time start = absl::Now();
  *ok = call(&context).ok() && *ok;
  return absl::ToDoubleMilliseconds(absl::Now() - start);
}

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& o, const fs::path& dir) {
  // Enough tasks that the job outlasts the window even at full speed.
  const int tasks = o.workers * static_cast<int>(std::ceil(o.seconds / o.task_seconds) + 5);
  RETURN_IF_ERROR(WriteLinearModel(dir / "model", tasks, 16, 128, DType::kF32));
  ASSIGN_OR_RETURN(auto service,
                   BenchService::Start(OwnBinDir(), dir,
                                       {"--max-watchers",
                                        absl::StrCat(std::max(1024, o.watchers + 1))}));
  RETURN_IF_ERROR(service->StartWorkers(o.workers, {"--threads", "1", "--backend", "bench",
                                                    "--bench-task-seconds",
                                                    absl::StrCat(o.task_seconds)}));
  LoadResult r;
  ASSIGN_OR_RETURN(const uint64_t rss_idle, service->coordinator().RssBytes());
  r.rss_idle_mb = static_cast<double>(rss_idle) / 1e6;
  quant::QuantizerConfig q;
  q.method = quant::Method::kRtn;
  q.bits = 4;
  q.group_size = 32;
  ASSIGN_OR_RETURN(const v1::Job job,
                   service->Submit(JobFor("load", dir / "model", dir / "out", q)));
  auto stub = v1::JobService::NewStub(service->channel());
  std::atomic<uint64_t> events = 0;
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < o.watchers; ++i) {
    watchers.push_back(std::make_unique<Watcher>(*stub, job.id(), &events));
  }
  ASSIGN_OR_RETURN(const v1::Job before, service->GetJob(job.id()));
  const uint64_t events_before = events.load();
  const absl::Time start = absl::Now(), end = start + absl::Seconds(o.seconds);
  absl::Time next_sample = start;
  bool ok = true;
  for (int call = 0; absl::Now() < end; ++call) {
    if (absl::Now() >= next_sample) {
      ASSIGN_OR_RETURN(const uint64_t rss, service->coordinator().RssBytes());
      r.rss_max_mb = std::max(r.rss_max_mb, static_cast<double>(rss) / 1e6);
      next_sample += absl::Seconds(1);
    }
    if (call % 2 == 0) {
      v1::GetJobRequest request;
      request.set_job_id(job.id());
      v1::Job response;
      r.get_job_ms.push_back(TimedCall(
          [&](grpc::ClientContext* c) { return stub->GetJob(c, request, &response); }, &ok));
    } else {
      v1::ListWorkersResponse response;
      r.list_workers_ms.push_back(TimedCall(
          [&](grpc::ClientContext* c) {
            return stub->ListWorkers(c, v1::ListWorkersRequest(), &response);
          },
          &ok));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  r.events = events.load() - events_before;
  ASSIGN_OR_RETURN(const uint64_t rss_end, service->coordinator().RssBytes());
  r.rss_end_mb = static_cast<double>(rss_end) / 1e6;
  r.rss_max_mb = std::max(r.rss_max_mb, r.rss_end_mb);
  ASSIGN_OR_RETURN(const v1::Job after, service->GetJob(job.id()));
  r.tasks_committed = static_cast<int>(after.status().progress().tasks_done() -
                                       before.status().progress().tasks_done());
  for (auto& w : watchers) {
    w->Join();
    r.watchers_failed += w->failed();
  }
  if (!ok) return absl::InternalError("a GetJob or ListWorkers call failed");
  {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Seconds(10));
    v1::CancelJobRequest request;
    request.set_job_id(job.id());
    request.set_reason("glvq-bench load: done");
    v1::Job cancelled;
    RETURN_IF_ERROR(rpc::FromGrpcStatus(stub->CancelJob(&context, request, &cancelled)));
  }
  return r;
}

void Print(const LoadOptions& o, const LoadResult& r) {
  const double p50_get = Quantile(r.get_job_ms, 0.5), p99_get = Quantile(r.get_job_ms, 0.99);
  const double p50_list = Quantile(r.list_workers_ms, 0.5);
  const double p99_list = Quantile(r.list_workers_ms, 0.99);
  if (o.json) {
    std::cout << json{{"watchers", o.watchers},
                      {"workers", o.workers},
                      {"seconds", o.seconds},
                      {"task_seconds", o.task_seconds},
                      {"tasks_committed", r.tasks_committed},
                      {"events", r.events},
                      {"watchers_failed", r.watchers_failed},
                      {"rss_idle_mb", r.rss_idle_mb},
                      {"rss_max_mb", r.rss_max_mb},
                      {"rss_end_mb", r.rss_end_mb},
                      {"get_job_calls", r.get_job_ms.size()},
                      {"get_job_p50_ms", p50_get},
                      {"get_job_p99_ms", p99_get},
                      {"list_workers_calls", r.list_workers_ms.size()},
                      {"list_workers_p50_ms", p50_list},
                      {"list_workers_p99_ms", p99_list}}
                     .dump()
              << std::endl;
    return;
  }
  std::cout << absl::StrFormat(
      "load: %d WatchJob streams on one job, %d bench-engine workers (%g s a task), %g s; "
      "RSS: the coordinator's (idle: workers registered, no job); GetJob / ListWorkers from one "
      "client, 20 calls a second\n%8s %7s %6s %9s %8s %9s %8s %8s %8s %8s %8s %8s\n",
      o.watchers, o.workers, o.task_seconds, o.seconds, "watchers", "workers", "tasks",
      "events/s", "w.failed", "RSS idle", "RSS max", "RSS end", "Get p50", "Get p99", "List p50",
      "List p99");
  std::cout << absl::StrFormat(
      "%8d %7d %6d %9.0f %8d %7.1fMB %6.1fMB %6.1fMB %6.2fms %6.2fms %6.2fms %6.2fms\n",
      o.watchers, o.workers, r.tasks_committed, static_cast<double>(r.events) / o.seconds,
      r.watchers_failed, r.rss_idle_mb, r.rss_max_mb, r.rss_end_mb, p50_get, p99_get, p50_list,
      p99_list);
}

int Load(const LoadOptions& o) {
  std::string scratch;
  fs::path dir = o.work_dir;
  if (dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "glvq-load-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "glvq-bench load: cannot create a temporary directory\n";
      return 1;
    }
    scratch = pattern;
    dir = scratch;
  }
  absl::StatusOr<LoadResult> r = RunLoad(o, dir);
  if (!r.ok()) {
    std::cerr << "glvq-bench load: " << r.status().message() << " (logs kept in " << dir.string()
              << ")\n";
    return 1;
  }
  Print(o, *r);
  if (!scratch.empty()) fs::remove_all(scratch);
  return r->watchers_failed == 0 ? 0 : 1;
}

}  // namespace

void RegisterLoadBench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "load", "Coordinator RSS and RPC latency under many watchers and workers");
  auto o = std::make_shared<LoadOptions>();
  cmd->add_option("--watchers", o->watchers, "WatchJob streams on the job")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--workers", o->workers, "Bench-engine worker processes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--seconds", o->seconds, "Measurement window")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--task-seconds", o->task_seconds, "Time per task")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--work-dir", o->work_dir,
                  "Keep the model, state and logs in this new directory (default: a temporary "
                  "directory, removed)");
  cmd->add_flag("--json", o->json, "One JSON object");
  cmd->callback([o] {
    if (const int rc = Load(*o); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace glvq::bench
