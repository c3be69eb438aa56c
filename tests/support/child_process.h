// Background processes for end-to-end tests: the coordinator and workers
// run as real processes (common/process) that a test can signal (SIGTERM,
// SIGKILL) and wait for.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/process/child_process.h"

namespace glvq::testing {

using process::ChildProcess;
using process::WaitForPortFile;

// Starts `argv` (argv[0] a path) with stdout and stderr appended to `log`;
// throws std::runtime_error, which fails the test, if it cannot start.
// The caller owns the child (killed and reaped when the pointer goes).
std::unique_ptr<ChildProcess> StartChild(const std::vector<std::string>& argv,
                                         const std::filesystem::path& log);

}  // namespace glvq::testing
