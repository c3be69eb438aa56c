#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/result_codec.h"
#include "coordinator/fingerprint.h"
#include "coordinator/output_writer.h"
#include "coordinator/planner.h"

namespace glvq::coordinator {
namespace {

using Phase = TaskSlot::Phase;

absl::Status UnknownJob(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("unknown job '", id, "'"));
}

// A backend the job asks for that the worker does not have.
bool BackendFits(v1::Backend wanted, v1::Backend have) {
  return wanted != v1::BACKEND_CUDA || have == v1::BACKEND_CUDA;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerOptions& options) {
  std::unique_ptr<Scheduler> s(new Scheduler(options));
  std::vector<v1::JournalRecord> records;
  ASSIGN_OR_RETURN(s->store_, JobStore::Open(options.state_dir, &records));
  RETURN_IF_ERROR(s->Recover(records));
  s->sweeper_ = std::thread([p = s.get()] { p->SweepLoop(); });
  s->finalizer_ = std::thread([p = s.get()] { p->FinalizeLoop(); });
  return s;
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (finalizer_.joinable()) finalizer_.join();
}

JobEntry* Scheduler::FindJob(const std::string& job_id) {
  const auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

// ---- JobService ------------------------------------------------------------

absl::StatusOr<v1::SubmitJobResponse> Scheduler::Submit(const v1::SubmitJobRequest& request) {
  const v1::QuantizationJob& definition = request.job();
  const absl::Time now = absl::Now();
  v1::SubmitJobResponse response;
  std::string job_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (const auto it = request_ids_.find(request.request_id());
        !request.request_id().empty() && it != request_ids_.end()) {
      *response.mutable_job() = FindJob(it->second)->Snapshot(now);
      return response;
    }
    job_id = absl::StrFormat("%s-%06d", definition.metadata().name(), next_job_number_);
  }
  RETURN_IF_ERROR(jobspec::ValidateJob(definition));
  const v1::JobSpec& spec = definition.spec();
  ASSIGN_OR_RETURN(jobspec::JobInputs inputs, jobspec::CheckJobEnvironment(spec));
  ASSIGN_OR_RETURN(Plan plan, PlanJob(spec, inputs, {job_id}));
  ASSIGN_OR_RETURN(v1::InputFingerprint fingerprint, Fingerprint(spec, inputs));

  auto job = std::make_unique<JobEntry>();
  job->job.set_id(request.validate_only() ? "" : job_id);
  *job->job.mutable_definition() = definition;
  v1::JobStatus& status = *job->job.mutable_status();
  status.set_state(v1::JOB_STATE_RUNNING);
  *status.mutable_plan() = plan.Summary();
  *status.mutable_created_at() = rpc::ToProto(now);
  *status.mutable_started_at() = rpc::ToProto(now);
  if (request.validate_only()) {
    status.set_state(v1::JOB_STATE_UNSPECIFIED);
    *response.mutable_job() = job->job;
    return response;
  }
  job->request_id = request.request_id();
  job->fingerprint = fingerprint;
  job->inputs = std::make_shared<const jobspec::JobInputs>(std::move(inputs));
  job->run_started = now;
  for (v1::Task& task : plan.tasks) {
    job->task_index[task.id()] = job->tasks.size();
    ++job->ranges_left[task.tensor()];
    job->tasks.push_back({std::move(task)});
  }

  std::lock_guard<std::mutex> lock(mu_);
  if (jobs_.contains(job_id)) return absl::AbortedError("concurrent submissions: submit again");
  for (const auto& [id, other] : jobs_) {
    if (!IsTerminal(other->state()) && other->job.definition().spec().output().path() ==
                                           spec.output().path()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "spec.output.path: job ", id, " is already writing ", spec.output().path()));
    }
  }
  v1::JournalRecord record;
  v1::JobSubmitted* submitted = record.mutable_submitted();
  *submitted->mutable_job() = job->job;
  submitted->set_request_id(job->request_id);
  *submitted->mutable_fingerprint() = fingerprint;
  for (const TaskSlot& t : job->tasks) submitted->add_task_ids(t.task.id());
  RETURN_IF_ERROR(store_->Append(std::move(record)));

  ++next_job_number_;
  if (!job->request_id.empty()) request_ids_[job->request_id] = job_id;
  job->AddMessageEvent(now, absl::StrCat("submitted: ", job->tasks.size(), " tasks"));
  *response.mutable_job() = job->Snapshot(now);
  response.set_created(true);
  GLVQ_LOG(kInfo) << "job " << job_id << ": submitted, " << job->tasks.size() << " tasks";
  job_order_.push_back(job_id);
  jobs_[job_id] = std::move(job);
  cv_.notify_all();
  return response;
}

absl::StatusOr<v1::Job> Scheduler::GetJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  JobEntry* job = FindJob(job_id);
  if (job == nullptr) return UnknownJob(job_id);
  return job->Snapshot(absl::Now());
}

absl::StatusOr<v1::Job> Scheduler::Cancel(const std::string& job_id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  JobEntry* job = FindJob(job_id);
  if (job == nullptr) return UnknownJob(job_id);
  if (job->state() == v1::JOB_STATE_CANCELLED) return job->Snapshot(absl::Now());
  if (IsTerminal(job->state()) || job->state() == v1::JOB_STATE_FINALIZING) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", v1::JobState_Name(job->state()),
                     "; only a running job can be cancelled"));
  }
  FinishJob(job, v1::JOB_STATE_CANCELLED, absl::OkStatus(),
            reason.empty() ? "cancelled" : absl::StrCat("cancelled: ", reason));
  return job->Snapshot(absl::Now());
}

v1::ListJobsResponse Scheduler::ListJobs(const v1::ListJobsRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = absl::Now();
  v1::ListJobsResponse response;
  for (auto it = job_order_.rbegin(); it != job_order_.rend(); ++it) {
    const JobEntry& job = *jobs_[*it];
    const auto& states = request.states();
    if (!states.empty() && std::find(states.begin(), states.end(), job.state()) == states.end()) {
      continue;
    }
    *response.add_jobs() = job.Snapshot(now);
  }
  return response;
}

v1::ListWorkersResponse Scheduler::ListWorkers() {
  std::lock_guard<std::mutex> lock(mu_);
  v1::ListWorkersResponse response;
  for (v1::WorkerInfo& w : workers_.List()) *response.add_workers() = std::move(w);
  return response;
}

absl::StatusOr<v1::JobEvent> Scheduler::CurrentEvent(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  JobEntry* job = FindJob(job_id);
  if (job == nullptr) return UnknownJob(job_id);
  const absl::Time now = absl::Now();
  v1::JobEvent e;
  e.set_job_id(job_id);
  e.set_sequence(job->last_sequence);
  *e.mutable_time() = rpc::ToProto(now);
  e.set_state(job->state());
  *e.mutable_progress() = job->ProgressNow(now);
  e.set_message(absl::StrCat("state ", v1::JobState_Name(job->state())));
  return e;
}

absl::StatusOr<std::vector<v1::JobEvent>> Scheduler::WaitForEvents(const std::string& job_id,
                                                                   uint64_t after,
                                                                   absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    JobEntry* job = FindJob(job_id);
    if (job == nullptr) return UnknownJob(job_id);
    if (job->last_sequence > after) {
      std::vector<v1::JobEvent> out;
      for (const v1::JobEvent& e : job->events) {
        if (e.sequence() > after) out.push_back(e);
      }
      return out;
    }
    if (stopping_) return absl::UnavailableError("the coordinator is shutting down");
    if (absl::Now() >= deadline) return std::vector<v1::JobEvent>{};
    cv_.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(
                           std::min(deadline - absl::Now(), absl::Milliseconds(500)))));
  }
}

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

bool Scheduler::TryLease(const std::string& worker_id, v1::PullTaskResponse* out) {
  WorkerEntry* worker = workers_.Find(worker_id);
  const v1::Capabilities& caps = worker->info.capabilities();
  for (const std::string& id : job_order_) {
    JobEntry& job = *jobs_[id];
    if (job.state() != v1::JOB_STATE_RUNNING ||
        !BackendFits(job.job.definition().spec().workers().backend(), caps.backend())) {
      continue;
    }
    for (TaskSlot& slot : job.tasks) {
      if (slot.phase != Phase::kPending) continue;
      if (caps.memory_bytes() != 0 && slot.task.memory_bytes() > caps.memory_bytes()) continue;
      const absl::Time now = absl::Now();
      slot.task.set_attempt(slot.task.attempt() + 1);
      slot.phase = Phase::kLeased;
      slot.lease_id = absl::StrCat(id, "/", slot.task.id(), "/", slot.task.attempt());
      slot.worker_id = worker_id;
      slot.expires = now + options_.lease_duration;
      leases_[slot.lease_id] = {id, job.task_index[slot.task.id()]};
      ++job.tasks_running;
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
  }
  return false;
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
    if (TryLease(request.worker_id(), &response)) return response;
    if (stopping_ || absl::Now() >= deadline || cancelled()) break;
    cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
  *response.mutable_retry_after() = rpc::ToProto(absl::Milliseconds(500));
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::Heartbeat(const v1::HeartbeatRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  v1::HeartbeatResponse response;
  WorkerEntry* worker = workers_.Find(request.worker_id());
  if (worker == nullptr) {
    response.set_reregister(true);
    return response;
  }
  const absl::Time now = absl::Now();
  worker->last_heartbeat = now;
  *worker->info.mutable_last_heartbeat() = rpc::ToProto(now);
  if (request.state() == v1::WORKER_STATE_DRAINING ||
      worker->info.state() == v1::WORKER_STATE_LOST) {
    worker->info.set_state(request.state() == v1::WORKER_STATE_UNSPECIFIED
                               ? v1::WORKER_STATE_IDLE
                               : request.state());
  }
  for (const v1::LeaseProgress& held : request.leases()) {
    const auto it = leases_.find(held.lease_id());
    JobEntry* job = it == leases_.end() ? nullptr : FindJob(it->second.job_id);
    TaskSlot* slot = job == nullptr ? nullptr : &job->tasks[it->second.task];
    if (slot == nullptr || job->state() != v1::JOB_STATE_RUNNING ||
        slot->phase != Phase::kLeased || slot->lease_id != held.lease_id()) {
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
  return slot.task;
}

absl::StatusOr<v1::UploadResultResponse::Outcome> Scheduler::CommitResult(
    const v1::TaskResultHeader& header, const std::string& payload) {
  v1::Task task;
  auto check_committed = [&](JobEntry* job) -> absl::StatusOr<bool> {
    const TaskSlot& slot = job->tasks[job->task_index[header.task_id()]];
    if (slot.phase != Phase::kCommitted) return false;
    if (slot.payload_crc32c != header.payload_crc32c()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "task ", header.task_id(), " was committed with a different result (CRC32C ",
          slot.payload_crc32c, ", this upload ", header.payload_crc32c(),
          "): results must be deterministic; the committed result stays"));
    }
    return true;
  };
  auto find = [&]() -> absl::StatusOr<JobEntry*> {
    JobEntry* job = FindJob(header.job_id());
    if (job == nullptr) return UnknownJob(header.job_id());
    if (!job->task_index.contains(header.task_id())) {
      return absl::NotFoundError(absl::StrCat("job ", header.job_id(), " has no task '",
                                              header.task_id(), "'"));
    }
    return job;
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(JobEntry * job, find());
    ASSIGN_OR_RETURN(const bool done, check_committed(job));
    if (done) return v1::UploadResultResponse::OUTCOME_ALREADY_COMMITTED;
    if (job->state() != v1::JOB_STATE_RUNNING) {
      return absl::AbortedError(absl::StrCat("job ", job->id(), " is ",
                                             v1::JobState_Name(job->state())));
    }
    task = job->tasks[job->task_index[header.task_id()]].task;
  }
  // Checked and stored outside the lock: decoding is the expensive part.
  RETURN_IF_ERROR(rpc::DecodeResult(task, header, payload).status());
  RETURN_IF_ERROR(store_->WriteResult(header.job_id(), header, payload));

  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(JobEntry * job, find());
  ASSIGN_OR_RETURN(const bool done, check_committed(job));
  if (done) return v1::UploadResultResponse::OUTCOME_ALREADY_COMMITTED;
  if (job->state() != v1::JOB_STATE_RUNNING) {
    return absl::AbortedError(absl::StrCat("job ", job->id(), " is ",
                                           v1::JobState_Name(job->state())));
  }
  v1::JournalRecord record;
  v1::TaskCommitted* committed = record.mutable_committed();
  committed->set_job_id(header.job_id());
  committed->set_task_id(header.task_id());
  *committed->mutable_header() = header;
  RETURN_IF_ERROR(store_->Append(std::move(record)));
  TaskSlot* slot = &job->tasks[job->task_index[header.task_id()]];
  if (slot->phase == Phase::kLeased) {
    if (WorkerEntry* w = workers_.Find(slot->worker_id)) {
      w->info.set_tasks_completed(w->info.tasks_completed() + 1);
      w->info.set_weights_done(w->info.weights_done() + slot->task.weights());
    }
  }
  MarkCommitted(job, slot, header);
  return v1::UploadResultResponse::OUTCOME_COMMITTED;
}

void Scheduler::MarkCommitted(JobEntry* job, TaskSlot* slot, const v1::TaskResultHeader& header) {
  ReleaseLease(job, slot);
  slot->phase = Phase::kCommitted;
  slot->payload_crc32c = header.payload_crc32c();
  job->CountCommitted(*slot, header);
  v1::TaskEvent* e = nullptr;
  const absl::Time now = absl::Now();
  job->AddTaskEvent(now, v1::TaskEvent::KIND_COMMITTED, *slot, "");
  e = job->events.back().mutable_task();
  *e->mutable_quality() = header.quality();
  if (job->tasks_done == job->tasks.size()) {
    job->job.mutable_status()->set_state(v1::JOB_STATE_FINALIZING);
    job->AddMessageEvent(now, "every task committed: writing the output");
    to_finalize_.push_back(job->id());
  }
  cv_.notify_all();
}

void Scheduler::ReleaseLease(JobEntry* job, TaskSlot* slot) {
  if (slot->phase != Phase::kLeased) return;
  workers_.RemoveTask(slot->worker_id, absl::StrCat(job->id(), "/", slot->task.id()));
  --job->tasks_running;
  slot->phase = Phase::kPending;
  slot->lease_id.clear();
}

void Scheduler::Requeue(JobEntry* job, TaskSlot* slot, const std::string& reason,
                        bool count_failure, absl::StatusCode code) {
  if (slot->phase != Phase::kLeased) return;
  ReleaseLease(job, slot);
  ++job->retries;
  if (count_failure) ++slot->failures;
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
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = leases_.find(request.lease_id());
  JobEntry* job = it == leases_.end() ? nullptr : FindJob(it->second.job_id);
  if (job == nullptr) return absl::OkStatus();  // nothing to give back any more
  TaskSlot* slot = &job->tasks[it->second.task];
  if (slot->phase != Phase::kLeased || slot->lease_id != request.lease_id()) {
    return absl::OkStatus();
  }
  if (WorkerEntry* w = workers_.Find(slot->worker_id)) {
    w->info.set_tasks_failed(w->info.tasks_failed() + 1);
  }
  const auto code = static_cast<absl::StatusCode>(request.code());
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
  return absl::OkStatus();
}

absl::Status Scheduler::DeregisterWorker(const std::string& worker_id) {
  std::lock_guard<std::mutex> lock(mu_);
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
  return absl::OkStatus();
}

// ---- lifecycle -------------------------------------------------------------

void Scheduler::FinishJob(JobEntry* job, v1::JobState state, const absl::Status& error,
                          const std::string& message) {
  const absl::Time now = absl::Now();
  for (TaskSlot& slot : job->tasks) ReleaseLease(job, &slot);
  v1::JobStatus& status = *job->job.mutable_status();
  status.set_state(state);
  status.set_error_code(static_cast<int>(error.code()));
  status.set_error_message(error.ok() ? message : std::string(error.message()));
  *status.mutable_finished_at() = rpc::ToProto(now);
  v1::JournalRecord record;
  v1::JobFinished* finished = record.mutable_finished();
  finished->set_job_id(job->id());
  finished->set_state(state);
  finished->set_error_code(status.error_code());
  finished->set_error_message(status.error_message());
  *finished->mutable_progress() = job->ProgressNow(now);
  if (absl::Status s = store_->Append(std::move(record)); !s.ok()) {
    GLVQ_LOG(kError) << "job " << job->id() << ": cannot journal its end: " << s;
  }
  job->final_progress = job->ProgressNow(now);
  job->inputs.reset();
  store_->RemoveResults(job->id());
  job->AddMessageEvent(now, absl::StrCat(v1::JobState_Name(state), ": ",
                                         status.error_message()));
  GLVQ_LOG(kInfo) << "job " << job->id() << ": " << v1::JobState_Name(state) << " "
                  << status.error_message();
  cv_.notify_all();
}

void Scheduler::SweepLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options_.sweep_interval)));
    const absl::Time now = absl::Now();
    for (const std::string& id : job_order_) {
      JobEntry* job = jobs_[id].get();
      for (TaskSlot& slot : job->tasks) {
        if (job->state() == v1::JOB_STATE_RUNNING && slot.phase == Phase::kLeased &&
            slot.expires < now) {
          Requeue(job, &slot, absl::StrCat("lease expired on worker ", slot.worker_id),
                  /*count_failure=*/true, absl::StatusCode::kUnavailable);
        }
      }
    }
    workers_.MarkLost(now, options_.lease_duration);
  }
}

void Scheduler::FinalizeLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (to_finalize_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const std::string id = to_finalize_.front();
    to_finalize_.pop_front();
    lock.unlock();
    Finalize(id);
    lock.lock();
  }
}

void Scheduler::Finalize(const std::string& job_id) {
  v1::JobSpec spec;
  std::vector<v1::Task> tasks;
  std::shared_ptr<const jobspec::JobInputs> inputs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    JobEntry* job = FindJob(job_id);
    spec = job->job.definition().spec();
    for (const TaskSlot& s : job->tasks) tasks.push_back(s.task);
    inputs = job->inputs;
  }
  const ResultLoader load = [&](const v1::Task& task) -> absl::StatusOr<CommittedResult> {
    ASSIGN_OR_RETURN(StoredResult r, store_->ReadResult(job_id, task.id()));
    return CommittedResult{std::move(r.header), std::move(r.payload)};
  };
  absl::StatusOr<v1::QualitySummary> quality;
  std::string how = "output written and verified";
  if (std::filesystem::exists(spec.output().path())) {
    // Renamed into place just before a crash of an earlier coordinator.
    quality = VerifyExistingOutput(spec.output().path());
    how = "output found in place (written before a restart) and verified";
  } else {
    quality = WriteJobOutput(spec, tasks, inputs->model, load);
  }
  std::lock_guard<std::mutex> lock(mu_);
  JobEntry* job = FindJob(job_id);
  if (!quality.ok()) {
    FinishJob(job, v1::JOB_STATE_FAILED,
              absl::Status(quality.status().code(),
                           absl::StrCat("writing the output: ", quality.status().message())),
              "");
    return;
  }
  job->final_quality = *quality;
  FinishJob(job, v1::JOB_STATE_SUCCEEDED, absl::OkStatus(),
            absl::StrCat(how, ": ", spec.output().path()));
}

}  // namespace glvq::coordinator
