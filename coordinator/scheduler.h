// The coordinator's core: jobs, their tasks and leases, the worker
// registry, result intake and the finalisation of finished jobs. The gRPC
// services (job_service.h, worker_service.h) are thin adapters over it.
//
// Leases: a task is leased to one worker for `lease_duration`; the worker
// renews it by heartbeats. An expired lease, or a failure the worker
// reports, puts the task back (attempt + 1 on the next lease); after
// `max_attempts` such failures of one task the job fails with the reason.
// A worker that deregisters gives its tasks back without that counting.
// A worker whose tasks keep failing is set aside for a while.
//
// Fair share: each lease goes to the running job that holds the fewest
// leases (ties: the one leased to least recently), so concurrent jobs
// split the workers evenly instead of the first job taking them all.
//
// Durability: every submitted job (with its plan and input fingerprint),
// committed task and finished job is journaled (job_store.h). Records are
// appended under the lock, in the order of the state changes, and flushed
// by group commit outside it: every call waits, after releasing the lock,
// until the journal is on disk up to the records behind what it reports
// (an upload's commit, a job's state), so nothing a crash could undo is
// ever reported. Create() replays the journal and resumes unfinished jobs.
#pragma once

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "glvq_version.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/job_entry.h"
#include "coordinator/job_store.h"
#include "coordinator/metrics.h"
#include "coordinator/worker_registry.h"
#include "glvq/v1/services.pb.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace glvq::coordinator {

inline constexpr char kCoordinatorVersion[] = "glvq " GLVQ_VERSION;

// Bounds on what clients can make large (docs/security.md, "Limits"); each
// refusal is RESOURCE_EXHAUSTED naming the flag that raises it.
struct ServiceLimits {
  uint32_t max_tasks_per_job = 1'000'000;  // --max-tasks-per-job
  uint32_t max_active_jobs = 64;           // --max-active-jobs: unfinished jobs
  uint32_t max_watchers = 1024;            // --max-watchers: open WatchJob streams
};

struct SchedulerOptions {
  std::filesystem::path state_dir;
  absl::Duration lease_duration = absl::Seconds(30);
  uint32_t max_attempts = 4;
  absl::Duration sweep_interval = absl::Milliseconds(100);
  absl::Duration max_pull_wait = absl::Seconds(10);
  // Workers whose tasks fail this many times in a row take no new lease
  // for a while (docs/service.md, "Workers that keep failing").
  SetAsidePolicy set_aside;
  ServiceLimits limits;
  // Model, calibration and output paths of submitted jobs must resolve
  // inside one of these (--allowed-root; empty: anywhere).
  std::vector<std::filesystem::path> allowed_roots;
  // The journal's flush (tests count or fail it; journal.h).
  JournalOptions journal;
};

class Scheduler {
 public:
  // Opens the state dir, replays its journal and resumes unfinished jobs
  // (re-checking their inputs), then starts the lease sweeper and the
  // finaliser threads.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerOptions& options);
  ~Scheduler();
  const SchedulerOptions& options() const { return options_; }
  // Stops the background threads and wakes every waiting call. Idempotent.
  void Stop();

  // ---- JobService -------------------------------------------------------
  absl::StatusOr<v1::SubmitJobResponse> Submit(const v1::SubmitJobRequest& request);
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id, const std::string& reason);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  v1::ListWorkersResponse ListWorkers();
  // The job's current state as one event (sequence = the last event's).
  absl::StatusOr<v1::JobEvent> CurrentEvent(const std::string& job_id);
  // Events with sequence > `after`, waiting until there is one or
  // `deadline`; empty on timeout or Stop().
  absl::StatusOr<std::vector<v1::JobEvent>> WaitForEvents(const std::string& job_id,
                                                          uint64_t after, absl::Time deadline);

  // ---- WorkerService ----------------------------------------------------
  v1::RegisterWorkerResponse RegisterWorker(const v1::RegisterWorkerRequest& request);
  // Long poll: waits up to min(request.wait, max_pull_wait) for a task, or
  // until `cancelled()` (the client went away).
  absl::StatusOr<v1::PullTaskResponse> PullTask(const v1::PullTaskRequest& request,
                                                const std::function<bool()>& cancelled);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  // The task a FetchTensor request may read: its lease must be current.
  absl::StatusOr<v1::Task> TaskForFetch(const v1::FetchTensorRequest& request);
  // Checks, stages and journals a task's result (see UploadResult in
  // services.proto for the outcomes and errors); answers once its commit
  // record is on disk.
  absl::StatusOr<v1::UploadResultResponse::Outcome> CommitResult(
      const v1::TaskResultHeader& header, const std::string& payload);
  absl::Status ReportFailure(const v1::ReportTaskFailureRequest& request);
  absl::Status DeregisterWorker(const std::string& worker_id);

  // ---- metrics (docs/operations.md, "Metrics reference") ---------------
  CoordinatorMetrics& metrics() { return metrics_; }
  // What a metrics server serves for this coordinator: the event metrics,
  // and the job and worker figures read under the lock at each scrape.
  // Unregister them before destroying the scheduler.
  std::vector<std::shared_ptr<prometheus::Collectable>> MetricsCollectables();

 private:
  struct LeaseRef {
    std::string job_id;
    size_t task = 0;
  };

  explicit Scheduler(const SchedulerOptions& options) : options_(options) {}

  // Recovery (scheduler_recovery.cc).
  absl::Status Recover(const std::vector<v1::JournalRecord>& records);
  void ResumeJob(JobEntry* job, const v1::JobSubmitted& submitted,
                 const std::vector<const v1::TaskCommitted*>& committed);

  // Submit's last step, under the lock: the limits checked, the job
  // journaled (its record's sequence number returned) and added.
  absl::StatusOr<uint64_t> Enqueue(std::unique_ptr<JobEntry> job, absl::Time now,
                                   v1::SubmitJobResponse* response);

  // All under mu_.
  JobEntry* FindJob(const std::string& job_id);
  v1::JobState StateOf(const std::string& job_id);
  // The task a worker with `caps` should get next (fair share across
  // jobs), and its job; nullptr if none.
  TaskSlot* NextTaskFor(const v1::Capabilities& caps, JobEntry** job);
  bool TryLease(const std::string& worker_id, v1::PullTaskResponse* out);
  // Counts a failed task against the worker that held it (set aside?).
  void NoteWorkerFailure(const std::string& worker_id);
  void Requeue(JobEntry* job, TaskSlot* slot, const std::string& reason, bool count_failure,
               absl::StatusCode code);
  // CommitResult's steps under the lock: claim the task for this upload
  // (nullopt: committed before), then journal and count the staged result
  // (or release the claim if staging failed); the commit record's sequence
  // number.
  absl::StatusOr<std::optional<v1::Task>> BeginCommit(const v1::TaskResultHeader& header);
  absl::StatusOr<uint64_t> EndCommit(const v1::TaskResultHeader& header,
                                     const absl::Status& staged);
  // A result that passed its checks but could not be staged: see
  // scheduler_workers.cc. Returns the UNAVAILABLE status for the worker.
  absl::Status StorageFailure(const std::string& job_id, const absl::Status& error);
  // Finalisation found these tasks' staged results damaged: they go back
  // to the queue (each counts as a failure of its task).
  void RedoDamaged(JobEntry* job, const std::vector<std::pair<std::string, absl::Status>>& damaged);
  void ReleaseLease(JobEntry* job, TaskSlot* slot);
  // Ends a job: terminal state, journal record, leases revoked (by the next
  // heartbeats); its staged results are dropped once the record is on disk.
  void FinishJob(JobEntry* job, v1::JobState state, const absl::Status& error,
                 const std::string& message);
  void MarkCommitted(JobEntry* job, TaskSlot* slot, const v1::TaskResultHeader& header);
  void SweepLoop();
  void FinalizeLoop();
  void Finalize(const std::string& job_id);
  // The state figures of MetricsCollectables (scheduler_metrics.cc).
  std::vector<prometheus::MetricFamily> StateMetrics();

  const SchedulerOptions options_;
  std::unique_ptr<JobStore> store_;

  std::mutex mu_;
  std::condition_variable cv_;  // any change: tasks, events, stop
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<JobEntry>> jobs_;
  std::vector<std::string> job_order_;  // submission order
  std::map<std::string, LeaseRef> leases_;
  std::map<std::string, std::string> request_ids_;  // request id -> job id
  WorkerRegistry workers_;
  std::deque<std::string> to_finalize_;
  // Jobs whose results to delete once their JobFinished record (sequence
  // number) is on disk.
  std::deque<std::pair<std::string, uint64_t>> to_clean_;
  uint64_t next_job_number_ = 1;
  uint64_t lease_serial_ = 0;  // leases granted; orders jobs for fair share

  CoordinatorMetrics metrics_;
  std::shared_ptr<prometheus::Collectable> state_metrics_;

  std::thread sweeper_;
  std::thread finalizer_;
};

}  // namespace glvq::coordinator
