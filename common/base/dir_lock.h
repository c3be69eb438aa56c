// An exclusive lock on a directory that one process owns (the coordinator's
// state dir): flock(2) on `<dir>/LOCK`, which the kernel drops when the
// process dies, so a kill -9 never leaves a stale lock behind.
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"

namespace glvq {

class DirectoryLock {
 public:
  // Takes the lock on `dir` (which must exist) and writes this process's
  // id into LOCK. FAILED_PRECONDITION naming the holder's pid if another
  // open of the lock (in any process) holds it.
  static absl::StatusOr<std::unique_ptr<DirectoryLock>> Acquire(const std::filesystem::path& dir);
  ~DirectoryLock();  // releases it
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  explicit DirectoryLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace glvq
