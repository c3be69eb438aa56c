// The coordinator's journal: an append-only file of JournalRecord messages
// (proto/glvq/v1/journal.proto), each framed as
//   u32 length (little-endian) | u32 CRC32C of the message | message bytes
// and fsync'd before Append returns, so a record the coordinator acted on
// survives a crash. A crash mid-append leaves a torn last record, which
// Open drops; damage anywhere else is DATA_LOSS (never silently skipped).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "glvq/v1/journal.pb.h"

namespace glvq::coordinator {

class Journal {
 public:
  // Opens or creates the journal at `path` and returns its records in
  // order in `*records`, truncating a torn tail.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const std::filesystem::path& path,
                                                       std::vector<v1::JournalRecord>* records);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends one record and fsyncs it. Thread-safe.
  absl::Status Append(const v1::JournalRecord& record);

 private:
  Journal(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  std::mutex mu_;
  int fd_;
};

}  // namespace glvq::coordinator
