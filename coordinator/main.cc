// glvq-coordinator: plans jobs, leases their tasks to workers, takes the
// results and writes the packed models (docs/service.md).
//
//   glvq-coordinator --listen 127.0.0.1:7070 --state-dir /var/lib/glvq
//
// SIGTERM or SIGINT stops it gracefully: waiting calls end, in-flight
// calls get a few seconds, the journal is already durable.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/base/one_line.h"
#include "common/cli/standard_flags.h"
#include "common/base/file_util.h"
#include "common/base/logging.h"
#include "common/rpc/security.h"
#include "common/metrics/metrics_server.h"
#include "coordinator/server.h"

int main(int argc, char** argv) {
  CLI::App app{"glvq-coordinator: the glvq job service"};
  std::string listen = "127.0.0.1:7070", state_dir, port_file;
  double lease_seconds = 30;
  uint32_t max_attempts = 4;
  app.add_option("--listen", listen, "host:port to serve on (port 0: any free port)");
  app.add_option("--state-dir", state_dir, "journal and committed results (resume)")->required();
  app.add_option("--lease-seconds", lease_seconds, "task lease duration")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-attempts", max_attempts,
                 "failures (expired leases, reported errors) of one task before its job fails")
      ->check(CLI::PositiveNumber);
  glvq::coordinator::SetAsidePolicy set_aside;
  double set_aside_seconds = absl::ToDoubleSeconds(set_aside.duration);
  app.add_option("--set-aside-after", set_aside.after_failures,
                 "failed tasks in a row after which a worker gets no leases for a while "
                 "(0: never)")
      ->capture_default_str();
  app.add_option("--set-aside-seconds", set_aside_seconds, "how long such a worker is set aside")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port to this file once serving");
  glvq::metrics::MetricsFlags metrics_flags;
  glvq::metrics::AddMetricsOptions(&app, &metrics_flags);
  glvq::rpc::ServerSecurity security;
  glvq::rpc::AddServerSecurityOptions(&app, &security);
  glvq::coordinator::ServiceLimits limits;
  app.add_option("--max-tasks-per-job", limits.max_tasks_per_job, "refuse jobs planning more tasks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-active-jobs", limits.max_active_jobs, "unfinished jobs at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-watchers", limits.max_watchers, "open WatchJob streams at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  std::vector<std::string> allowed_roots;
  app.add_option("--allowed-root", allowed_roots,
                 "job model, calibration and output paths must resolve inside one of these "
                 "directories (repeatable; default: anywhere)")
      ->check(CLI::ExistingDirectory);
  glvq::cli::AddStandardFlags(app, "glvq-coordinator");
  if (const std::optional<int> code = glvq::cli::ParseCommandLine(app, argc, argv)) return *code;

  // Signals are taken by sigwait below, never by a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  glvq::coordinator::SchedulerOptions options;
  options.state_dir = state_dir;
  options.lease_duration = absl::Seconds(lease_seconds);
  options.max_attempts = max_attempts;
  options.set_aside = set_aside;
  options.set_aside.duration = absl::Seconds(set_aside_seconds);
  options.limits = limits;
  options.allowed_roots.assign(allowed_roots.begin(), allowed_roots.end());
  auto server = glvq::coordinator::CoordinatorServer::Start(listen, options, security);
  if (!server.ok()) {
    std::cerr << "glvq-coordinator: " << glvq::ErrorLine(server.status()) << "\n";
    return 1;
  }
  // Declared after the server: destroyed first, while what it reads lives.
  auto metrics = glvq::metrics::ServeMetrics(metrics_flags.listen, "coordinator",
                                             (*server)->scheduler().MetricsCollectables(),
                                             metrics_flags.port_file);
  if (!metrics.ok()) {
    std::cerr << "glvq-coordinator: " << glvq::ErrorLine(metrics.status()) << "\n";
    return 1;
  }
  if (*metrics != nullptr) {
    std::cout << "glvq-coordinator: metrics on port " << (*metrics)->port() << std::endl;
  }
  const int port = (*server)->port();
  std::cout << "glvq-coordinator: serving on port " << port << ", state in " << state_dir
            << std::endl;
  if (!port_file.empty()) {
    if (auto s = glvq::AtomicWriteString(port_file, std::to_string(port) + "\n"); !s.ok()) {
      std::cerr << "glvq-coordinator: " << glvq::ErrorLine(s) << "\n";
      return 1;
    }
  }
  int signal = 0;
  sigwait(&signals, &signal);
  std::cout << "glvq-coordinator: signal " << signal << ", stopping" << std::endl;
  (*server)->Shutdown(absl::Seconds(3));
  return 0;
}
