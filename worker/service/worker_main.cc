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
#include <thread>

#include "CLI/CLI.hpp"
#include "common/rpc/grpc_util.h"
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
                 "memory for tasks (default: physical memory)");
  app.add_option("--task-delay-ms", task_delay_ms, "testing: pause before each task")
      ->group("");
  CLI11_PARSE(app, argc, argv);
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

  glvq::worker::Worker worker(glvq::rpc::MakeChannel(coordinator), options);
  std::thread([&worker, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::cerr << "glvq-worker: signal " << signal << ", draining" << std::endl;
    worker.Stop();
  }).detach();
  const absl::Status s = worker.Run();
  if (!s.ok()) {
    std::cerr << "glvq-worker: " << s.message() << "\n";
    return 1;
  }
  return 0;
}
