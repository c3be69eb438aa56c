// The coordinator's durable state in --state-dir:
//   journal                         Journal records: submitted jobs with
//                                   their plans, committed tasks, finished
//                                   jobs (group commit, see journal.h)
//   results/<job>/<task>.result     the staged result of each committed
//                                   task (u32 header length,
//                                   TaskResultHeader, payload), written
//                                   atomically before the task's commit
//                                   record; the job's output is assembled
//                                   from these (output_writer.h)
// A task counts as committed only when both its result file and its
// journal record exist; a restart re-reads and re-checks the file. A result
// file is fsync'd before its commit record is appended; its directory entry
// is fsync'd by the journal's next flush, before the batch holding the
// record is written, so one directory fsync covers every result of a batch.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/dir_lock.h"
#include "coordinator/journal.h"
#include "glvq/v1/journal.pb.h"
#include "glvq/v1/task.pb.h"

namespace glvq::coordinator {

struct StoredResult {
  v1::TaskResultHeader header;
  std::string payload;
};

class JobStore {
 public:
  // Creates `state_dir` if needed and opens its journal, returning the
  // records in `*records`.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::filesystem::path& state_dir,
                                                        std::vector<v1::JournalRecord>* records,
                                                        JournalOptions journal = {});

  // Stamps the record with the current time and buffers it in the journal;
  // its sequence number for Sync. Cheap: call it under the scheduler lock.
  absl::StatusOr<uint64_t> Append(v1::JournalRecord record);
  // Returns once the journal is on disk up to record `seq` (or everything
  // appended so far); see Journal::Sync. Never under the scheduler lock.
  absl::Status Sync(uint64_t seq) { return journal_->Sync(seq); }
  absl::Status SyncAll() { return journal_->SyncAll(); }

  // Writes a checked result atomically to its results file (fsync'd; the
  // rename is durable before any journal record appended after this).
  absl::Status WriteResult(const std::string& job_id, const v1::TaskResultHeader& header,
                           std::string_view payload);
  // Reads a result back and checks it against its header (DATA_LOSS on any
  // mismatch, NOT_FOUND if missing).
  absl::StatusOr<StoredResult> ReadResult(const std::string& job_id,
                                          const std::string& task_id) const;
  // Deletes one stored result (a damaged one, or one written for a job
  // that ended meanwhile).
  void RemoveResult(const std::string& job_id, const std::string& task_id);
  // Deletes a job's results (after its output was verified, or it ended).
  void RemoveResults(const std::string& job_id);

  const std::filesystem::path& state_dir() const { return state_dir_; }

 private:
  // Directories with entries not yet fsync'd; the journal syncs them
  // before it writes its next batch.
  class PendingDirectories {
   public:
    void Add(const std::filesystem::path& dir);
    void SyncAll();

   private:
    std::mutex mu_;
    std::set<std::filesystem::path> dirs_;
  };

  JobStore(std::filesystem::path dir, std::unique_ptr<DirectoryLock> lock,
           std::shared_ptr<PendingDirectories> pending, std::unique_ptr<Journal> journal)
      : state_dir_(std::move(dir)),
        lock_(std::move(lock)),
        pending_(std::move(pending)),
        journal_(std::move(journal)) {}
  std::filesystem::path ResultPath(const std::string& job_id, const std::string& task_id) const;

  std::filesystem::path state_dir_;
  std::unique_ptr<DirectoryLock> lock_;  // one coordinator per state dir
  std::shared_ptr<PendingDirectories> pending_;
  std::unique_ptr<Journal> journal_;
};

}  // namespace glvq::coordinator
