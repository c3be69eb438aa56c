#include "tests/support/child_process.h"

#include <stdexcept>

namespace glvq::testing {

std::unique_ptr<ChildProcess> StartChild(const std::vector<std::string>& argv,
                                         const std::filesystem::path& log) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv, log);
  if (!child.ok()) throw std::runtime_error(child.status().ToString());
  return *std::move(child);
}

}  // namespace glvq::testing
