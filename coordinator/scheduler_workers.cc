// Scheduler, the worker side: registration, leases (PullTask, heartbeats),
// result intake, failures and deregistration.
#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/logging.h"
#include "common/base/random_token.h"
#include "common/base/status_macros.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/result_codec.h"

namespace glvq::coordinator {
namespace {

using Phase = TaskSlot::Phase;

// A worker naming a lease that another worker holds (ids leak in logs and
// events; holding the lease is not enough, it must be one's own).
absl::Status NotTheHolder(const std::string& lease_id) {
  return absl::PermissionDeniedError(
      absl::StrCat("lease ", lease_id, " is held by another worker"));
}

// A backend the job asks for that the worker does not have.
bool BackendFits(v1::Backend wanted, v1::Backend have) {
  return wanted != v1::BACKEND_CUDA || have == v1::BACKEND_CUDA;
}

}  // namespace

// ---- WorkerService ---------------------------------------------------------

v1::RegisterWorkerResponse Scheduler::RegisterWorker(const v1::RegisterWorkerRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  v1::RegisterWorkerResponse response;
  response.set_worker_id(workers_.Register(request.hostname(), request.capabilities(),
                                           request.previous_worker_id(), absl::Now()));
  *response.mutable_heartbeat_interval() = rpc::ToProto(options_.lease_duration / 3);
  response.set_coordinator_version(kCoordinatorVersion);
  GLVQ_LOG(kInfo) << "worker " << response.worker_id() << " registered from "
                  << request.hostname();
  return response;
}

TaskSlot* Scheduler::NextTaskFor(const v1::Capabilities& caps, JobEntry** job_out) {
  // Fair share: of the running jobs with a task this worker can take, the
  // one holding the fewest leases; ties go to the job leased to least
  // recently, which makes equal jobs alternate. Within a job, plan order.
  TaskSlot* best = nullptr;
  JobEntry* best_job = nullptr;
  for (const std::string& id : job_order_) {
    JobEntry& job = *jobs_[id];
    if (job.state() != v1::JOB_STATE_RUNNING ||
        !BackendFits(job.job.definition().spec().workers().backend(), caps.backend())) {
      continue;
    }
    if (best_job != nullptr &&
        std::pair(job.tasks_running, job.last_lease_serial) >=
            std::pair(best_job->tasks_running, best_job->last_lease_serial)) {
      continue;
    }
    for (TaskSlot& slot : job.tasks) {
      // A task whose result is being committed (its lease expired
      // meanwhile) is not handed out again.
      if (slot.phase != Phase::kPending || slot.committing) continue;
      if (caps.memory_bytes() != 0 && slot.task.memory_bytes() > caps.memory_bytes()) continue;
      best = &slot;
      best_job = &job;
      break;
    }
  }
  *job_out = best_job;
  return best;
}

bool Scheduler::TryLease(const std::string& worker_id, v1::PullTaskResponse* out) {
  WorkerEntry* worker = workers_.Find(worker_id);
  const absl::Time now = absl::Now();
  if (!workers_.CanLease(worker, now)) return false;
  JobEntry* job_ptr = nullptr;
  TaskSlot* slot_ptr = NextTaskFor(worker->info.capabilities(), &job_ptr);
  if (slot_ptr == nullptr) return false;
  JobEntry& job = *job_ptr;
  TaskSlot& slot = *slot_ptr;
  const std::string& id = job.id();
  slot.task.set_attempt(slot.task.attempt() + 1);
  slot.phase = Phase::kLeased;
  // The random tail makes lease ids unguessable: holding one is what lets a
  // worker renew, fetch for or give back a task (with its worker id).
  slot.lease_id = absl::StrCat(id, "/", slot.task.id(), "/", slot.task.attempt(), "/",
                               RandomToken());
  slot.worker_id = worker_id;
  slot.expires = now + options_.lease_duration;
  leases_[slot.lease_id] = {id, job.task_index[slot.task.id()]};
  ++job.tasks_running;
  job.last_lease_serial = ++lease_serial_;
  metrics_.TaskLeased();
  workers_.AddTask(worker_id, absl::StrCat(id, "/", slot.task.id()));
  *out->mutable_task() = slot.task;
  v1::Lease* lease = out->mutable_lease();
  lease->set_lease_id(slot.lease_id);
  lease->set_task_id(slot.task.id());
  lease->set_attempt(slot.task.attempt());
  lease->set_worker_id(worker_id);
  *lease->mutable_expires_at() = rpc::ToProto(slot.expires);
  *lease->mutable_renew_interval() = rpc::ToProto(options_.lease_duration / 3);
  job.AddTaskEvent(now, v1::TaskEvent::KIND_LEASED, slot, "");
  cv_.notify_all();
  return true;
}

absl::StatusOr<v1::PullTaskResponse> Scheduler::PullTask(const v1::PullTaskRequest& request,
                                                         const std::function<bool()>& cancelled) {
  const absl::Duration wait =
      std::min(rpc::FromProto(request.wait()), options_.max_pull_wait);
  const absl::Time deadline = absl::Now() + wait;
  v1::PullTaskResponse response;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    WorkerEntry* worker = workers_.Find(request.worker_id());
    if (worker == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("unknown worker '", request.worker_id(), "': register again"));
    }
    if (worker->info.state() == v1::WORKER_STATE_DRAINING) break;
    if (TryLease(request.worker_id(), &response)) {
      const uint64_t submitted = FindJob(response.task().job_id())->submitted_seq;
      lock.unlock();
      // No work on a job whose submission a crash could still undo.
      RETURN_IF_ERROR(store_->Sync(submitted));
      return response;
    }
    if (stopping_ || absl::Now() >= deadline || cancelled()) break;
    cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
  *response.mutable_retry_after() = rpc::ToProto(absl::Milliseconds(500));
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::Heartbeat(const v1::HeartbeatRequest& request) {
  std::unique_lock<std::mutex> lock(mu_);
  v1::HeartbeatResponse response;
  WorkerEntry* worker = workers_.Find(request.worker_id());
  if (worker == nullptr) {
    response.set_reregister(true);
    return response;
  }
  const absl::Time now = absl::Now();
  workers_.Heartbeat(worker, request.state(), now);
  for (const v1::LeaseProgress& held : request.leases()) {
    const auto it = leases_.find(held.lease_id());
    JobEntry* job = it == leases_.end() ? nullptr : FindJob(it->second.job_id);
    TaskSlot* slot = job == nullptr ? nullptr : &job->tasks[it->second.task];
    if (slot == nullptr || job->state() != v1::JOB_STATE_RUNNING ||
        slot->phase != Phase::kLeased || slot->lease_id != held.lease_id() ||
        slot->worker_id != request.worker_id()) {
      response.add_revoked_lease_ids(held.lease_id());
      continue;
    }
    slot->expires = now + options_.lease_duration;
    v1::Lease* lease = response.add_renewed();
    lease->set_lease_id(slot->lease_id);
    lease->set_task_id(slot->task.id());
    lease->set_attempt(slot->task.attempt());
    lease->set_worker_id(slot->worker_id);
    *lease->mutable_expires_at() = rpc::ToProto(slot->expires);
    *lease->mutable_renew_interval() = rpc::ToProto(options_.lease_duration / 3);
  }
  lock.unlock();
  // A revocation may stem from a commit or a job's end: reported once on disk.
  if (response.revoked_lease_ids_size() > 0) RETURN_IF_ERROR(store_->SyncAll());
  return response;
}

absl::StatusOr<v1::Task> Scheduler::TaskForFetch(const v1::FetchTensorRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = leases_.find(request.lease_id());
  JobEntry* job = it == leases_.end() ? nullptr : FindJob(it->second.job_id);
  if (job == nullptr || job->tasks[it->second.task].task.id() != request.task_id()) {
    return absl::NotFoundError(absl::StrCat("unknown lease '", request.lease_id(), "'"));
  }
  const TaskSlot& slot = job->tasks[it->second.task];
  if (job->state() != v1::JOB_STATE_RUNNING || slot.lease_id != request.lease_id()) {
    return absl::AbortedError(absl::StrCat("lease ", request.lease_id(), " is no longer valid"));
  }
  if (slot.worker_id != request.worker_id()) return NotTheHolder(request.lease_id());
  return slot.task;
}

// The coordinator's disk, not the worker, failed: counted, logged and told
// to the job's watchers once per streak, and answered UNAVAILABLE so that
// the worker keeps the result and uploads it again (its heartbeats keep the
// lease) until space returns. Nothing counts against the worker.
absl::Status Scheduler::StorageFailure(const std::string& job_id, const absl::Status& error) {
  metrics_.StorageFailed();
  GLVQ_LOG(kError) << "job " << job_id << ": cannot stage a result: " << error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (JobEntry* job = FindJob(job_id); job != nullptr && !job->storage_failing) {
      job->storage_failing = true;
      job->AddMessageEvent(absl::Now(),
                           absl::StrCat("the coordinator cannot stage results (", error.message(),
                                        "); workers keep them and upload again"));
    }
  }
  return absl::UnavailableError(absl::StrCat("coordinator storage: ", error.message(),
                                             "; keep the result and upload it again"));
}

absl::StatusOr<v1::UploadResultResponse::Outcome> Scheduler::CommitResult(
    const v1::TaskResultHeader& header, const std::string& payload) {
  ASSIGN_OR_RETURN(const std::optional<v1::Task> task, BeginCommit(header));
  if (!task) {
    // Committed before, maybe by an upload whose record is still being flushed.
    RETURN_IF_ERROR(store_->SyncAll());
    return v1::UploadResultResponse::OUTCOME_ALREADY_COMMITTED;
  }
  // Checked and staged outside the lock: decoding and writing are the
  // expensive part.
  absl::Status staged = rpc::DecodeResult(*task, header, payload).status();
  if (staged.ok()) {
    staged = store_->WriteResult(header.job_id(), header, payload);
    if (!staged.ok()) staged = StorageFailure(header.job_id(), staged);
  }
  ASSIGN_OR_RETURN(const uint64_t seq, EndCommit(header, staged));
  // Group commit: this waits for the flush that covers the commit record.
  RETURN_IF_ERROR(store_->Sync(seq));
  return v1::UploadResultResponse::OUTCOME_COMMITTED;
}

namespace {

// Whether the task's slot holds this result already; FAILED_PRECONDITION
// if it holds a different one.
absl::StatusOr<bool> AlreadyCommitted(const TaskSlot& slot, const v1::TaskResultHeader& header) {
  if (slot.phase != TaskSlot::Phase::kCommitted) return false;
  if (slot.payload_crc32c != header.payload_crc32c()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", header.task_id(), " was committed with a different result (CRC32C ",
        slot.payload_crc32c, ", this upload ", header.payload_crc32c(),
        "): results must be deterministic; the committed result stays"));
  }
  return true;
}

}  // namespace

absl::StatusOr<std::optional<v1::Task>> Scheduler::BeginCommit(
    const v1::TaskResultHeader& header) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    JobEntry* job = FindJob(header.job_id());
    if (job == nullptr) return UnknownJobError(header.job_id());
    const auto it = job->task_index.find(header.task_id());
    if (it == job->task_index.end()) {
      return absl::NotFoundError(absl::StrCat("job ", header.job_id(), " has no task '",
                                              header.task_id(), "'"));
    }
    TaskSlot& slot = job->tasks[it->second];
    ASSIGN_OR_RETURN(const bool done, AlreadyCommitted(slot, header));
    if (done) return std::nullopt;
    if (job->state() != v1::JOB_STATE_RUNNING) {
      return absl::AbortedError(absl::StrCat("job ", job->id(), " is ",
                                             StateLabel(job->state())));
    }
    if (!slot.committing) {
      slot.committing = true;
      return slot.task;
    }
    // Another upload of the task is being staged: its outcome decides.
    if (stopping_) return absl::UnavailableError("the coordinator is shutting down");
    cv_.wait(lock);
  }
}

absl::StatusOr<uint64_t> Scheduler::EndCommit(const v1::TaskResultHeader& header,
                                              const absl::Status& staged) {
  std::lock_guard<std::mutex> lock(mu_);
  JobEntry* job = FindJob(header.job_id());  // jobs are never removed
  TaskSlot* slot = &job->tasks[job->task_index[header.task_id()]];
  slot->committing = false;
  cv_.notify_all();
  RETURN_IF_ERROR(staged);
  if (job->state() != v1::JOB_STATE_RUNNING) {
    store_->RemoveResult(job->id(), header.task_id());  // the job ended meanwhile
    return absl::AbortedError(absl::StrCat("job ", job->id(), " is ",
                                           StateLabel(job->state())));
  }
  v1::JournalRecord record;
  v1::TaskCommitted* committed = record.mutable_committed();
  committed->set_job_id(header.job_id());
  committed->set_task_id(header.task_id());
  *committed->mutable_header() = header;
  ASSIGN_OR_RETURN(const uint64_t seq, store_->Append(std::move(record)));
  if (slot->phase == Phase::kLeased) {
    if (WorkerEntry* w = workers_.Find(slot->worker_id)) {
      w->info.set_tasks_completed(w->info.tasks_completed() + 1);
      w->info.set_weights_done(w->info.weights_done() + slot->task.weights());
    }
  }
  workers_.RecordSuccess(header.worker_id());
  if (job->storage_failing) {
    job->storage_failing = false;
    job->AddMessageEvent(absl::Now(), "the coordinator stages results again");
  }
  MarkCommitted(job, slot, header);
  metrics_.TaskCommitted(header);
  return seq;
}

void Scheduler::MarkCommitted(JobEntry* job, TaskSlot* slot, const v1::TaskResultHeader& header) {
  ReleaseLease(job, slot);
  job->Commit(*slot, header);
  const absl::Time now = absl::Now();
  *job->AddTaskEvent(now, v1::TaskEvent::KIND_COMMITTED, *slot, "").mutable_quality() =
      header.quality();
  if (job->tasks_done == job->tasks.size()) {
    job->job.mutable_status()->set_state(v1::JOB_STATE_FINALIZING);
    job->AddMessageEvent(now, "every task committed: writing the output");
    to_finalize_.push_back(job->id());
  }
  cv_.notify_all();
}

void Scheduler::RedoDamaged(JobEntry* job,
                            const std::vector<std::pair<std::string, absl::Status>>& damaged) {
  if (job->state() != v1::JOB_STATE_FINALIZING) return;
  const absl::Time now = absl::Now();
  for (const auto& [task_id, why] : damaged) {
    TaskSlot& slot = job->tasks[job->task_index[task_id]];
    if (++slot.failures >= options_.max_attempts) {
      job->AddTaskEvent(now, v1::TaskEvent::KIND_FAILED, slot, std::string(why.message()));
      FinishJob(job, v1::JOB_STATE_FAILED,
                absl::DataLossError(absl::StrCat(
                    "task ", task_id, " (", slot.task.tensor(), ") failed ", slot.failures,
                    " times; last: its staged result is damaged: ", why.message())),
                "");
      return;
    }
  }
  for (const auto& [task_id, why] : damaged) {
    TaskSlot& slot = job->tasks[job->task_index[task_id]];
    slot.phase = Phase::kPending;
    slot.payload_crc32c = 0;
    ++job->retries;
    metrics_.TaskRetried();
    job->AddTaskEvent(now, v1::TaskEvent::KIND_RETRIED, slot, std::string(why.message()));
    GLVQ_LOG(kWarn) << "job " << job->id() << ": " << why << "; the task is redone";
  }
  job->RecountCommitted();
  job->job.mutable_status()->set_state(v1::JOB_STATE_RUNNING);
  job->AddMessageEvent(now, absl::StrCat("the staged results of ", damaged.size(),
                                         " tasks are damaged: redoing them (",
                                         damaged.front().second.message(), ")"));
  cv_.notify_all();
}

void Scheduler::ReleaseLease(JobEntry* job, TaskSlot* slot) {
  if (slot->phase != Phase::kLeased) return;
  workers_.RemoveTask(slot->worker_id, absl::StrCat(job->id(), "/", slot->task.id()));
  --job->tasks_running;
  slot->phase = Phase::kPending;
  slot->lease_id.clear();
}

void Scheduler::NoteWorkerFailure(const std::string& worker_id) {
  if (workers_.RecordFailure(worker_id, absl::Now(), options_.set_aside)) {
    GLVQ_LOG(kWarn) << "worker " << worker_id << ": set aside for "
                    << absl::FormatDuration(options_.set_aside.duration) << " after "
                    << workers_.Find(worker_id)->info.consecutive_failures()
                    << " failed tasks in a row";
  }
}

void Scheduler::Requeue(JobEntry* job, TaskSlot* slot, const std::string& reason,
                        bool count_failure, absl::StatusCode code) {
  if (slot->phase != Phase::kLeased) return;
  ReleaseLease(job, slot);
  ++job->retries;
  metrics_.TaskRetried();
  if (count_failure) {
    ++slot->failures;
    NoteWorkerFailure(slot->worker_id);
  }
  GLVQ_LOG(kWarn) << "job " << job->id() << ": task " << slot->task.id() << " attempt "
                  << slot->task.attempt() << ": " << reason;
  if (slot->failures >= options_.max_attempts) {
    job->AddTaskEvent(absl::Now(), v1::TaskEvent::KIND_FAILED, *slot, reason);
    FinishJob(job, v1::JOB_STATE_FAILED,
              absl::Status(code, absl::StrCat("task ", slot->task.id(), " (", slot->task.tensor(),
                                              ") failed ", slot->failures, " times; last: ",
                                              reason)),
              "");
    return;
  }
  job->AddTaskEvent(absl::Now(), v1::TaskEvent::KIND_RETRIED, *slot, reason);
  cv_.notify_all();
}

absl::Status Scheduler::ReportFailure(const v1::ReportTaskFailureRequest& request) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto it = leases_.find(request.lease_id());
  JobEntry* job = it == leases_.end() ? nullptr : FindJob(it->second.job_id);
  if (job == nullptr) return absl::OkStatus();  // nothing to give back any more
  TaskSlot* slot = &job->tasks[it->second.task];
  if (slot->phase != Phase::kLeased || slot->lease_id != request.lease_id()) {
    return absl::OkStatus();
  }
  if (slot->worker_id != request.worker_id()) return NotTheHolder(request.lease_id());
  if (WorkerEntry* w = workers_.Find(slot->worker_id)) {
    w->info.set_tasks_failed(w->info.tasks_failed() + 1);
  }
  const auto code = static_cast<absl::StatusCode>(request.code());
  metrics_.TaskFailed(code);
  const std::string reason = absl::StrCat("worker ", request.worker_id(), " reported ",
                                          absl::StatusCodeToString(code), ": ", request.message());
  if (code == absl::StatusCode::kInvalidArgument) {
    // Bad input (e.g. NaN weights) fails on every worker: no retries.
    ReleaseLease(job, slot);
    job->AddTaskEvent(absl::Now(), v1::TaskEvent::KIND_FAILED, *slot, reason);
    FinishJob(job, v1::JOB_STATE_FAILED,
              absl::InvalidArgumentError(absl::StrCat("task ", slot->task.id(), " (",
                                                      slot->task.tensor(), "): ",
                                                      request.message())),
              "");
  } else {
    Requeue(job, slot, reason, /*count_failure=*/true, code);
  }
  lock.unlock();
  return store_->SyncAll();  // the job may have failed
}

absl::Status Scheduler::DeregisterWorker(const std::string& worker_id) {
  std::unique_lock<std::mutex> lock(mu_);
  for (const std::string& id : job_order_) {
    JobEntry* job = jobs_[id].get();
    for (TaskSlot& slot : job->tasks) {
      if (slot.phase == Phase::kLeased && slot.worker_id == worker_id) {
        Requeue(job, &slot, absl::StrCat("worker ", worker_id, " left"),
                /*count_failure=*/false, absl::StatusCode::kUnavailable);
      }
    }
  }
  workers_.Remove(worker_id);
  GLVQ_LOG(kInfo) << "worker " << worker_id << " deregistered";
  lock.unlock();
  return store_->SyncAll();  // a job may have failed
}

}  // namespace glvq::coordinator
