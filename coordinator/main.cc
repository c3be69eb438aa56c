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

#include "CLI/CLI.hpp"
#include "common/base/file_util.h"
#include "common/base/logging.h"
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
  app.add_option("--port-file", port_file, "write the bound port to this file once serving");
  CLI11_PARSE(app, argc, argv);

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
  auto server = glvq::coordinator::CoordinatorServer::Start(listen, options);
  if (!server.ok()) {
    std::cerr << "glvq-coordinator: " << server.status().message() << "\n";
    return 1;
  }
  const int port = (*server)->port();
  std::cout << "glvq-coordinator: serving on port " << port << ", state in " << state_dir
            << std::endl;
  if (!port_file.empty()) {
    if (auto s = glvq::AtomicWriteString(port_file, std::to_string(port) + "\n"); !s.ok()) {
      std::cerr << "glvq-coordinator: " << s.message() << "\n";
      return 1;
    }
  }
  int signal = 0;
  sigwait(&signals, &signal);
  std::cout << "glvq-coordinator: signal " << signal << ", stopping" << std::endl;
  (*server)->Shutdown(absl::Seconds(3));
  return 0;
}
