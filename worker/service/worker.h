// The worker service loop (docs/service.md, "Workers"): register with the
// coordinator, pull a task, read or fetch its weights, quantize the range
// with the engine, upload the packed result in checksummed chunks, repeat.
// A heartbeat thread keeps the lease of the task in flight alive (and the
// registration: it re-registers after a coordinator restart). Stop()
// drains: no new task is pulled, the one in flight is finished and
// uploaded, then the worker deregisters.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc/chunks.h"
#include "glvq/v1/services.grpc.pb.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "worker/service/engine_backend.h"
#include "worker/service/worker_metrics.h"

namespace glvq::worker {

struct WorkerOptions {
  std::string hostname;
  // Engine threads per task; 0 keeps the job's setting. Never changes results.
  int threads = 0;
  // The engine tasks run on (ResolveBackend); the CPU engine by default.
  EngineBackend backend;
  // Directories read by path (a shared filesystem); empty: every input is
  // streamed with FetchTensor.
  std::vector<std::string> shared_paths = {"/"};
  uint64_t memory_bytes = 0;  // 0: UsableMemoryBytes() (cgroup limit, else physical)
  absl::Duration pull_wait = absl::Seconds(2);
  absl::Duration rpc_timeout = absl::Seconds(30);
  int upload_attempts = 3;
  size_t chunk_bytes = rpc::kMaxChunkData;
  // Testing: sleep this long after leasing a task, before quantizing it,
  // so that a test can kill the worker mid-task.
  absl::Duration task_delay = absl::ZeroDuration();
  // Benchmarking only (`glvq-worker --backend bench`, glvq-bench scaling):
  // every task takes at least this long — the engine's real result, padded
  // with a sleep — and its result names backend "bench". Zero: off.
  absl::Duration bench_task_time = absl::ZeroDuration();
};

class Worker {
 public:
  Worker(std::shared_ptr<grpc::Channel> channel, WorkerOptions options);
  ~Worker();

  // Serves until Stop(); OK after a clean drain. Call once.
  absl::Status Run();
  // Thread-safe; returns at once (Run returns after the drain).
  void Stop();
  // With bench_task_time, what the worker waited for the coordinator, in
  // seconds: the round trip of every PullTask call that returned a lease
  // (the lease-grant latency) and of every successful UploadResult. Read
  // after Run.
  struct BenchStats {
    std::vector<double> grant_seconds;
    std::vector<double> upload_seconds;
  };
  const BenchStats& bench_stats() const { return bench_stats_; }
  // What a metrics server serves for this worker: its event metrics, and
  // its state and GPU memory read at each scrape. Unregister them before
  // destroying the worker.
  std::vector<std::shared_ptr<prometheus::Collectable>> MetricsCollectables();

 private:
  struct Current {
    v1::Task task;
    v1::Lease lease;
    bool revoked = false;
  };

  absl::Status Register();
  void HeartbeatLoop();
  void SendHeartbeat();
  // Pulls once; returns the task and lease, or nullopt.
  absl::StatusOr<std::optional<Current>> Pull();
  void RunTask(const Current& current);
  absl::Status Upload(const v1::TaskResultHeader& header, const std::string& payload);
  void ReportFailure(const Current& current, const absl::Status& status);
  bool Revoked();
  // Waits before upload attempt `attempt` + 1 (exponential back-off from
  // 200 ms, at most 30 s). False, at once, if the worker is stopping or the
  // lease was revoked: then it is not worth trying again.
  bool WaitBeforeRetry(int attempt);
  std::vector<prometheus::MetricFamily> StateMetrics();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  const WorkerOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::string worker_id_;
  absl::Duration heartbeat_interval_ = absl::Seconds(5);
  std::optional<Current> current_;
  bool stopping_ = false;
  grpc::ClientContext* pull_context_ = nullptr;  // cancelled by Stop()
  BenchStats bench_stats_;                       // Run's thread only
  std::thread heartbeat_;

  WorkerMetrics metrics_;
  std::shared_ptr<prometheus::Collectable> state_metrics_;
};

// This machine's capabilities as the worker reports them.
v1::Capabilities LocalCapabilities(const WorkerOptions& options);

}  // namespace glvq::worker
