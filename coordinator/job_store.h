// The coordinator's durable state in --state-dir:
//   journal                         Journal records: submitted jobs with
//                                   their plans, committed tasks, finished jobs
//   results/<job>/<task>.result     the result of each committed task
//                                   (u32 header length, TaskResultHeader,
//                                   payload), written atomically before the
//                                   task's commit record
// A task counts as committed only when both its result file and its
// journal record exist; a restart re-reads and re-checks the file.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
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
                                                        std::vector<v1::JournalRecord>* records);

  // Stamps the record with the current time and appends it (fsync'd).
  absl::Status Append(v1::JournalRecord record);

  // Writes a checked result atomically (fsync'd) to its results file.
  absl::Status WriteResult(const std::string& job_id, const v1::TaskResultHeader& header,
                           std::string_view payload);
  // Reads a result back and checks it against its header (DATA_LOSS on any
  // mismatch, NOT_FOUND if missing).
  absl::StatusOr<StoredResult> ReadResult(const std::string& job_id,
                                          const std::string& task_id) const;
  // Deletes a job's results (after its output was verified, or it ended).
  void RemoveResults(const std::string& job_id);

  const std::filesystem::path& state_dir() const { return state_dir_; }

 private:
  JobStore(std::filesystem::path dir, std::unique_ptr<Journal> journal)
      : state_dir_(std::move(dir)), journal_(std::move(journal)) {}
  std::filesystem::path ResultPath(const std::string& job_id, const std::string& task_id) const;

  std::filesystem::path state_dir_;
  std::unique_ptr<Journal> journal_;
};

}  // namespace glvq::coordinator
