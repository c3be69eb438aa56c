// The coordinator's journal: an append-only file of JournalRecord messages
// (proto/glvq/v1/journal.proto), each framed as
//   u32 length (little-endian) | u32 CRC32C of the message | message bytes.
//
// Group commit: Append only frames the record into an in-memory buffer and
// returns its sequence number, so it is cheap enough to call under the
// scheduler's lock (which keeps the journal's order that of the state
// changes). Sync(seq) makes every record up to `seq` durable: the first
// caller to find records not yet on disk writes everything buffered so far
// with one write and flushes it with one fdatasync, outside any lock of the
// caller's; callers arriving meanwhile wait, and the next flush covers all
// of them. Nothing that depends on a record may be reported to anyone
// before Sync of that record returned OK.
//
// A crash mid-write leaves a torn last record, which Open drops; damage
// anywhere else is DATA_LOSS (never silently skipped), also a hole that a
// power loss left inside an unflushed batch (docs/service.md). A failed
// write or flush leaves the file's tail unknown (and Linux may forget a
// failed flush's error), so the journal then refuses every later Append
// and Sync of an unflushed record with that error: the coordinator must be
// restarted, and the replay recovers every record that was acknowledged.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "glvq/v1/journal.pb.h"

namespace glvq::coordinator {

struct JournalOptions {
  // Flushes the journal's file descriptor: ::fdatasync unless set. Returns
  // 0, or -1 with errno set. Tests inject one to count flushes or fail.
  std::function<int(int fd)> sync;
  // Called by the flushing thread before it writes a batch, to make durable
  // what the batch's records refer to (job_store.h: the directory entries
  // of staged results).
  std::function<void()> before_write;
};

class Journal {
 public:
  // Opens or creates the journal at `path` and returns its records in
  // order in `*records`, truncating a torn tail.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const std::filesystem::path& path,
                                                       std::vector<v1::JournalRecord>* records,
                                                       JournalOptions options = {});
  // Flushes what is still buffered (errors are logged).
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Buffers one record and returns its sequence number (1, 2, ... in the
  // order of the file). No I/O. Fails if the record does not serialize or
  // the journal failed before. Thread-safe.
  absl::StatusOr<uint64_t> Append(const v1::JournalRecord& record);
  // Returns once every record up to `seq` is written and flushed (group
  // commit, see above), or the error of the write or flush that failed.
  // Thread-safe; never call it while holding a lock others need.
  absl::Status Sync(uint64_t seq);
  // Sync of every record appended so far.
  absl::Status SyncAll();

  // Flushes done so far (each one covers one or more records).
  uint64_t flushes() const;

 private:
  Journal(std::filesystem::path path, int fd, JournalOptions options);
  // Writes and flushes `frames` (records up to `last`); called by one
  // thread at a time, without mu_.
  absl::Status WriteAndFlush(const std::string& frames, uint64_t last);

  const std::filesystem::path path_;
  const int fd_;
  const JournalOptions options_;

  mutable std::mutex mu_;
  std::condition_variable flushed_;  // a flush ended
  std::string buffer_;               // framed records no flush has taken yet
  uint64_t appended_ = 0;            // last sequence number handed out
  uint64_t durable_ = 0;             // every record up to this one is on disk
  bool flushing_ = false;            // a thread is writing and flushing
  uint64_t flushes_ = 0;
  absl::Status failed_;              // the first failed write or flush
};

}  // namespace glvq::coordinator
