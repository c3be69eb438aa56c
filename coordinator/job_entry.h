// One job as the scheduler holds it in memory: the Job proto clients see,
// its tasks and their leases, progress counters, and the event log that
// WatchJob streams. Plain data plus bookkeeping helpers; the scheduler's
// lock guards it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/jobspec/job_spec.h"
#include "coordinator/quality_summary.h"
#include "glvq/v1/job.pb.h"
#include "glvq/v1/journal.pb.h"
#include "glvq/v1/task.pb.h"

namespace glvq::coordinator {

struct TaskSlot {
  enum class Phase { kPending, kLeased, kCommitted };
  v1::Task task;        // as planned; `attempt` counts the leases issued
  Phase phase = Phase::kPending;
  std::string lease_id;   // the current lease (kLeased)
  std::string worker_id;  // its holder
  absl::Time expires;
  // Expired leases, reported failures and staged results found damaged.
  uint32_t failures = 0;
  // An upload of this task is being checked and staged; other uploads of
  // it wait for the outcome, so a result is staged and journaled once.
  bool committing = false;
  // kCommitted: the result's checksum and what the progress figures count.
  uint32_t payload_crc32c = 0;
  uint64_t payload_bytes = 0;
  uint64_t payload_bits = 0;
  TensorQuality quality;
};

bool IsTerminal(v1::JobState state);
// The state as messages and events spell it: "running", "succeeded", ...
// (the job spec's enum spelling, never the proto name JOB_STATE_RUNNING).
std::string StateLabel(v1::JobState state);
// NOT_FOUND naming the job.
absl::Status UnknownJobError(const std::string& job_id);

struct JobEntry {
  v1::Job job;  // status.progress is filled in on demand (ProgressNow)
  std::string request_id;
  v1::InputFingerprint fingerprint;
  uint64_t submitted_seq = 0;  // its JobSubmitted journal record (0: replayed)
  std::shared_ptr<const jobspec::JobInputs> inputs;  // while the job can run
  std::vector<TaskSlot> tasks;                       // plan order
  std::map<std::string, size_t> task_index;          // task id -> index

  // Progress counters.
  uint32_t tasks_done = 0;
  uint32_t tasks_running = 0;
  uint32_t retries = 0;
  bool storage_failing = false;  // the latest staging of a result failed (not journaled)
  uint64_t last_lease_serial = 0;  // the scheduler's lease count at its latest lease
  uint64_t weights_done = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  absl::Time run_started;         // this coordinator's start of the job
  uint64_t weights_at_run_start = 0;
  QualityAccumulator quality;
  std::map<std::string, uint32_t> ranges_left;  // per tensor: tasks not committed
  uint32_t tensors_done = 0;
  std::optional<v1::QualitySummary> final_quality;  // from the written output
  std::optional<v1::Progress> final_progress;       // restored from the journal

  // Events for WatchJob: the newest kMaxEvents, sequence numbers from 1.
  static constexpr size_t kMaxEvents = 4096;
  std::deque<v1::JobEvent> events;
  uint64_t last_sequence = 0;

  const std::string& id() const { return job.id(); }
  v1::JobState state() const { return job.status().state(); }
  v1::Progress ProgressNow(absl::Time now) const;
  // The Job as clients see it, progress filled in.
  v1::Job Snapshot(absl::Time now) const;
  // Appends an event carrying the current state and progress.
  v1::JobEvent& AddEvent(absl::Time now);
  void AddMessageEvent(absl::Time now, const std::string& message);
  v1::TaskEvent& AddTaskEvent(absl::Time now, v1::TaskEvent::Kind kind, const TaskSlot& slot,
                              const std::string& message);
  // Appends a task of the plan (pending).
  void AddPlannedTask(v1::Task task);
  // Marks `slot` committed with the result `header` describes and counts it
  // into the progress and quality figures.
  void Commit(TaskSlot& slot, const v1::TaskResultHeader& header);
  // Recounts those figures from the committed slots (after some went back
  // to pending).
  void RecountCommitted();

 private:
  void Count(const TaskSlot& slot);
};

}  // namespace glvq::coordinator
