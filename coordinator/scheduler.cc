#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/jobspec/path_policy.h"
#include "common/rpc/grpc_util.h"
#include "coordinator/fingerprint.h"
#include "coordinator/output_writer.h"
#include "coordinator/planner.h"

namespace glvq::coordinator {
namespace {

using Phase = TaskSlot::Phase;

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerOptions& options) {
  std::unique_ptr<Scheduler> s(new Scheduler(options));
  std::vector<v1::JournalRecord> records;
  ASSIGN_OR_RETURN(s->store_, JobStore::Open(options.state_dir, &records, options.journal));
  RETURN_IF_ERROR(s->Recover(records));
  RETURN_IF_ERROR(s->store_->SyncAll());  // jobs that could not resume, journaled as failed
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
  // Normalised at the one entry point of every client: a spec that leaves
  // quantizer fields out (groupSize 0, ...) reaches the planner complete.
  v1::QuantizationJob normalized = request.job();
  jobspec::NormalizeJob(&normalized);
  const v1::QuantizationJob& definition = normalized;
  const absl::Time now = absl::Now();
  v1::SubmitJobResponse response;
  std::string job_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (const auto it = request_ids_.find(request.request_id());
        !request.request_id().empty() && it != request_ids_.end()) {
      *response.mutable_job() = FindJob(it->second)->Snapshot(now);
      job_id = it->second;
    } else {
      // Reserved now: a failed submission leaves a gap, never a duplicate.
      job_id = absl::StrFormat("%s-%06d", definition.metadata().name(), next_job_number_++);
    }
  }
  if (response.has_job()) {  // a retried submission
    RETURN_IF_ERROR(store_->SyncAll());
    return response;
  }
  RETURN_IF_ERROR(jobspec::ValidateJob(definition));
  const v1::JobSpec& spec = definition.spec();
  if (spec.has_finetune()) {
    return absl::FailedPreconditionError(
        "spec.finetune runs in `glvq quantize` (embedded mode), not on a coordinator: submit the "
        "job without it and run `glvq finetune` on its output");
  }
  RETURN_IF_ERROR(jobspec::CheckPathPolicy(spec, options_.allowed_roots));
  RETURN_IF_ERROR(jobspec::CheckOutputOutsideStateDir(spec, options_.state_dir));
  ASSIGN_OR_RETURN(jobspec::JobInputs inputs, jobspec::CheckJobEnvironment(spec));
  ASSIGN_OR_RETURN(Plan plan, PlanJob(spec, inputs, {job_id}));
  if (plan.tasks.size() > options_.limits.max_tasks_per_job) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the job plans ", plan.tasks.size(), " tasks, more than this coordinator takes (",
        options_.limits.max_tasks_per_job,
        ", --max-tasks-per-job); raise spec.workers.maxTaskMemoryBytes or split the job"));
  }
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
  for (v1::Task& task : plan.tasks) job->AddPlannedTask(std::move(task));

  ASSIGN_OR_RETURN(const uint64_t seq, Enqueue(std::move(job), now, &response));
  // The client hears of the job once its submission is on disk.
  RETURN_IF_ERROR(store_->Sync(seq));
  return response;
}

absl::StatusOr<uint64_t> Scheduler::Enqueue(std::unique_ptr<JobEntry> job, absl::Time now,
                                            v1::SubmitJobResponse* response) {
  const std::string job_id = job->id();
  const v1::JobSpec& spec = job->job.definition().spec();
  std::lock_guard<std::mutex> lock(mu_);
  const auto active = std::count_if(jobs_.begin(), jobs_.end(),
                                    [](const auto& j) { return !IsTerminal(j.second->state()); });
  if (static_cast<uint64_t>(active) >= options_.limits.max_active_jobs) {
    return absl::ResourceExhaustedError(absl::StrCat(
        active, " jobs are unfinished, the most this coordinator runs at once (",
        "--max-active-jobs); wait for one to end or cancel one"));
  }
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
  *submitted->mutable_fingerprint() = job->fingerprint;
  for (const TaskSlot& t : job->tasks) submitted->add_task_ids(t.task.id());
  ASSIGN_OR_RETURN(job->submitted_seq, store_->Append(std::move(record)));

  if (!job->request_id.empty()) request_ids_[job->request_id] = job_id;
  job->AddMessageEvent(now, absl::StrCat("submitted: ", job->tasks.size(), " tasks"));
  *response->mutable_job() = job->Snapshot(now);
  response->set_created(true);
  GLVQ_LOG(kInfo) << "job " << job_id << ": submitted, " << job->tasks.size() << " tasks";
  const uint64_t seq = job->submitted_seq;
  job_order_.push_back(job_id);
  jobs_[job_id] = std::move(job);
  cv_.notify_all();
  return seq;
}

absl::StatusOr<v1::Job> Scheduler::GetJob(const std::string& job_id) {
  v1::Job snapshot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    JobEntry* job = FindJob(job_id);
    if (job == nullptr) return UnknownJobError(job_id);
    snapshot = job->Snapshot(absl::Now());
  }
  RETURN_IF_ERROR(store_->SyncAll());
  return snapshot;
}

absl::StatusOr<v1::Job> Scheduler::Cancel(const std::string& job_id, const std::string& reason) {
  v1::Job snapshot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    JobEntry* job = FindJob(job_id);
    if (job == nullptr) return UnknownJobError(job_id);
    if (job->state() != v1::JOB_STATE_CANCELLED) {
      if (IsTerminal(job->state()) || job->state() == v1::JOB_STATE_FINALIZING) {
        return absl::FailedPreconditionError(
            absl::StrCat("job ", job_id, " is ", StateLabel(job->state()),
                         "; only a running job can be cancelled"));
      }
      FinishJob(job, v1::JOB_STATE_CANCELLED, absl::OkStatus(),
                reason.empty() ? "cancelled" : absl::StrCat("cancelled: ", reason));
    }
    snapshot = job->Snapshot(absl::Now());
  }
  RETURN_IF_ERROR(store_->SyncAll());
  return snapshot;
}

absl::StatusOr<v1::ListJobsResponse> Scheduler::ListJobs(const v1::ListJobsRequest& request) {
  v1::ListJobsResponse response;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    for (auto it = job_order_.rbegin(); it != job_order_.rend(); ++it) {
      const JobEntry& job = *jobs_[*it];
      const auto& states = request.states();
      if (!states.empty() &&
          std::find(states.begin(), states.end(), job.state()) == states.end()) {
        continue;
      }
      *response.add_jobs() = job.Snapshot(now);
    }
  }
  RETURN_IF_ERROR(store_->SyncAll());
  return response;
}

v1::ListWorkersResponse Scheduler::ListWorkers() {
  std::lock_guard<std::mutex> lock(mu_);
  v1::ListWorkersResponse response;
  for (v1::WorkerInfo& w : workers_.List()) *response.add_workers() = std::move(w);
  return response;
}

absl::StatusOr<v1::JobEvent> Scheduler::CurrentEvent(const std::string& job_id) {
  v1::JobEvent e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    JobEntry* job = FindJob(job_id);
    if (job == nullptr) return UnknownJobError(job_id);
    const absl::Time now = absl::Now();
    e.set_job_id(job_id);
    e.set_sequence(job->last_sequence);
    *e.mutable_time() = rpc::ToProto(now);
    e.set_state(job->state());
    *e.mutable_progress() = job->ProgressNow(now);
    e.set_message(absl::StrCat("state ", StateLabel(job->state())));
  }
  RETURN_IF_ERROR(store_->SyncAll());
  return e;
}

absl::StatusOr<std::vector<v1::JobEvent>> Scheduler::WaitForEvents(const std::string& job_id,
                                                                   uint64_t after,
                                                                   absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    JobEntry* job = FindJob(job_id);
    if (job == nullptr) return UnknownJobError(job_id);
    if (job->last_sequence > after) {
      std::vector<v1::JobEvent> out;
      for (const v1::JobEvent& e : job->events) {
        if (e.sequence() > after) out.push_back(e);
      }
      lock.unlock();
      RETURN_IF_ERROR(store_->SyncAll());
      return out;
    }
    if (stopping_) return absl::UnavailableError("the coordinator is shutting down");
    if (absl::Now() >= deadline) return std::vector<v1::JobEvent>{};
    cv_.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(
                           std::min(deadline - absl::Now(), absl::Milliseconds(500)))));
  }
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
  if (absl::StatusOr<uint64_t> seq = store_->Append(std::move(record)); seq.ok()) {
    to_clean_.push_back({job->id(), *seq});
  } else {
    GLVQ_LOG(kError) << "job " << job->id() << ": cannot journal its end: " << seq.status();
  }
  job->final_progress = job->ProgressNow(now);
  job->inputs.reset();
  job->AddMessageEvent(now, absl::StrCat(StateLabel(state), ": ",
                                         status.error_message()));
  GLVQ_LOG(kInfo) << "job " << job->id() << ": " << StateLabel(state) << " "
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
          metrics_.LeaseExpired();
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
    if (!to_clean_.empty()) {
      const auto [id, seq] = to_clean_.front();
      to_clean_.pop_front();
      lock.unlock();
      // A crash before the job's end is on disk resumes it from its results.
      if (store_->Sync(seq).ok()) store_->RemoveResults(id);
      lock.lock();
      continue;
    }
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
  // The output is built only from commits that are on disk.
  if (absl::Status s = store_->SyncAll(); !s.ok()) {
    GLVQ_LOG(kError) << "job " << job_id << ": output not written: " << s;
    return;
  }
  v1::JobSpec spec;
  std::vector<v1::Task> tasks;
  std::map<std::string, uint32_t> committed_crc;
  std::shared_ptr<const jobspec::JobInputs> inputs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    JobEntry* job = FindJob(job_id);
    spec = job->job.definition().spec();
    for (const TaskSlot& s : job->tasks) {
      tasks.push_back(s.task);
      committed_crc[s.task.id()] = s.payload_crc32c;
    }
    inputs = job->inputs;
  }
  const ResultLoader load = [&](const v1::Task& task) -> absl::StatusOr<CommittedResult> {
    ASSIGN_OR_RETURN(StoredResult r, store_->ReadResult(job_id, task.id()));
    if (const uint32_t want = committed_crc[task.id()]; r.header.payload_crc32c() != want) {
      return absl::DataLossError(absl::StrCat("payload CRC32C ", r.header.payload_crc32c(),
                                              " is not the committed one (", want, ")"));
    }
    return CommittedResult{std::move(r.header), std::move(r.payload)};
  };
  absl::StatusOr<v1::QualitySummary> quality;
  std::string how = "output written and verified";
  if (std::filesystem::exists(spec.output().path())) {
    // Renamed into place just before a crash of an earlier coordinator.
    quality = VerifyExistingOutput(spec.output().path());
    how = "output found in place (written before a restart) and verified";
  } else {
    const auto damaged = FindDamagedResults(tasks, load);
    if (!damaged.empty()) {
      for (const auto& [task_id, why] : damaged) store_->RemoveResult(job_id, task_id);
      std::lock_guard<std::mutex> lock(mu_);
      RedoDamaged(FindJob(job_id), damaged);
      return;
    }
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
