// Child processes run by the benches and the end-to-end tests: the
// coordinator and workers as real processes that the caller can signal
// (SIGTERM, SIGKILL), wait for and measure.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace glvq::process {

// One started child. The object owns the child: its destructor SIGKILLs it
// if it still runs and reaps it, so no child outlives its owner unreaped.
// Not thread-safe.
class ChildProcess {
 public:
  // Starts `argv` (argv[0] a path, no PATH search) with stdout and stderr
  // appended to `log` (created if missing); the environment is inherited.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const std::filesystem::path& log);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `signal`; nothing once the child has been reaped.
  void Signal(int signal);
  // Waits for the exit and reaps the child: its exit code, 128 + the signal
  // if a signal ended it, or -1 if it still runs after `timeout`.
  int Wait(absl::Duration timeout = absl::Seconds(30));
  // User + system CPU time it has used so far (/proc/PID/stat), seconds.
  absl::StatusOr<double> CpuSeconds() const;
  // Its resident set size now (/proc/PID/status VmRSS), bytes.
  absl::StatusOr<uint64_t> RssBytes() const;

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}

  pid_t pid_;
  bool reaped_ = false;
};

// The port in a file that a server writes once it listens (--port-file),
// waiting up to `timeout` for it to appear; 0 if it never did.
int WaitForPortFile(const std::filesystem::path& path, absl::Duration timeout = absl::Seconds(20));

}  // namespace glvq::process
