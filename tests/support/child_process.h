// Background processes for end-to-end tests: the coordinator and workers
// run as real processes that a test can signal (SIGTERM, SIGKILL) and wait
// for.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace glvq::testing {

class ChildProcess {
 public:
  // Starts `argv` (argv[0] a path) with stdout and stderr appended to `log`.
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log);
  // Kills (SIGKILL) and reaps the process if it still runs.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signal);
  // Waits for the exit; the exit code, 128 + signal if killed, or -1 if it
  // did not end within `timeout_seconds`.
  int Wait(double timeout_seconds = 30);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Reads a file written by --port-file, waiting up to `timeout_seconds`;
// 0 if it never appeared.
int WaitForPortFile(const std::filesystem::path& path, double timeout_seconds = 20);

}  // namespace glvq::testing
