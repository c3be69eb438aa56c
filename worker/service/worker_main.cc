// glvq-worker: takes tasks from a glvq-coordinator and quantizes them
// (docs/service.md).
//
//   glvq-worker --coordinator host:7070 [--threads N] [--no-shared-fs]
//
// SIGTERM or SIGINT drains: the task in flight is finished and uploaded,
// the worker deregisters and exits 0.
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <optional>
#include <thread>

#include "CLI/CLI.hpp"
#include "common/base/one_line.h"
#include "common/cli/standard_flags.h"
#include "common/metrics/metrics_server.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/security.h"
#include "worker/service/worker.h"

int main(int argc, char** argv) {
  CLI::App app{"glvq-worker: quantizes tasks of a glvq coordinator"};
  std::string coordinator;
  glvq::worker::WorkerOptions options;
  bool no_shared_fs = false;
  std::vector<std::string> shared_paths;
  int task_delay_ms = 0;
  app.add_option("--coordinator", coordinator, "coordinator address host:port")->required();
  app.add_option("--threads", options.threads,
                 "engine threads per task (0: the job's setting); never changes results")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--no-shared-fs", no_shared_fs,
               "never read model files by path: stream every input with FetchTensor");
  app.add_option("--shared-path", shared_paths,
                 "directory readable under the coordinator's paths (default: all)");
  app.add_option("--memory-bytes", options.memory_bytes,
                 "memory for tasks, bytes (default: the container's memory.max, else physical memory)");
  glvq::metrics::MetricsFlags metrics_flags;
  glvq::metrics::AddMetricsOptions(&app, &metrics_flags);
  app.add_option("--task-delay-ms", task_delay_ms, "testing: pause before each task")
      ->group("");
  // `bench`: for glvq-bench scaling only, never chosen by a job.
  std::string backend = "auto", bench_stats;
  double bench_task_seconds = 1;
  app.add_option("--backend", backend,
                 "auto (CUDA when a usable GPU is visible, else the CPU engine), cuda, cpu; or "
                 "bench: the CPU engine padded to --bench-task-seconds per task, to measure the "
                 "coordinator")
      ->check(CLI::IsMember({"auto", "cuda", "cpu", "bench"}))
      ->capture_default_str();
  app.add_option("--bench-task-seconds", bench_task_seconds, "bench: time per task")
      ->check(CLI::PositiveNumber)
      ->group("Benchmarking");
  app.add_option("--bench-stats", bench_stats,
                 "bench: write the lease-grant and upload round trips (s) here at exit")
      ->group("Benchmarking");
  glvq::rpc::ClientSecurity security;
  glvq::rpc::AddClientSecurityOptions(&app, &security);
  glvq::cli::AddStandardFlags(app, "glvq-worker");
  if (const std::optional<int> code = glvq::cli::ParseCommandLine(app, argc, argv)) return *code;
  absl::StatusOr<glvq::worker::EngineBackend> engine = glvq::worker::ResolveLocalBackend(
      backend == "bench" ? glvq::worker::BackendRequest::kCpu
                         : *glvq::worker::ParseBackendRequest(backend));
  if (!engine.ok()) {
    std::cerr << "glvq-worker: " << glvq::ErrorLine(engine.status()) << "\n";
    return 1;
  }
  options.backend = *engine;
  std::cerr << "glvq-worker: engine " << engine->Label()
            << (engine->fallback_reason.empty() ? ""
                                                : " (no GPU taken: " + engine->fallback_reason + ")")
            << std::endl;
  if (backend == "bench") {
    options.bench_task_time = absl::Seconds(bench_task_seconds);
    std::cerr << "glvq-worker: BENCH backend: every task is padded to " << bench_task_seconds
              << " s; for glvq-bench scaling only" << std::endl;
  }
  if (no_shared_fs) {
    options.shared_paths.clear();
  } else if (!shared_paths.empty()) {
    options.shared_paths = shared_paths;
  }
  options.task_delay = absl::Milliseconds(task_delay_ms);
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  options.hostname = host;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto channel = glvq::rpc::MakeClientChannel(coordinator, security);
  if (!channel.ok()) {
    std::cerr << "glvq-worker: " << glvq::ErrorLine(channel.status()) << "\n";
    return 1;
  }
  glvq::worker::Worker worker(*channel, options);
  // Declared after the worker: destroyed first, while what it reads lives.
  auto metrics = glvq::metrics::ServeMetrics(metrics_flags.listen, "worker",
                                             worker.MetricsCollectables(),
                                             metrics_flags.port_file);
  if (!metrics.ok()) {
    std::cerr << "glvq-worker: " << glvq::ErrorLine(metrics.status()) << "\n";
    return 1;
  }
  std::thread([&worker, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::cerr << "glvq-worker: signal " << signal << ", draining" << std::endl;
    worker.Stop();
  }).detach();
  const absl::Status s = worker.Run();
  if (!s.ok()) {
    std::cerr << "glvq-worker: " << glvq::ErrorLine(s) << "\n";
    return 1;
  }
  if (!bench_stats.empty()) {
    std::string lines;
    for (double t : worker.bench_stats().grant_seconds) lines += absl::StrCat("grant ", t, "\n");
    for (double t : worker.bench_stats().upload_seconds) lines += absl::StrCat("upload ", t, "\n");
    if (absl::Status w = glvq::AtomicWriteString(bench_stats, lines); !w.ok()) {
      std::cerr << "glvq-worker: " << glvq::ErrorLine(w) << "\n";
      return 1;
    }
  }
  return 0;
}
