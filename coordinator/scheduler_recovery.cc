// Scheduler::Recover: rebuilding the jobs from the journal after a
// (re)start, and resuming the unfinished ones without redoing the tasks
// whose results are already stored.
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/rpc/grpc_util.h"
#include "coordinator/fingerprint.h"
#include "coordinator/planner.h"
#include "coordinator/scheduler.h"

namespace glvq::coordinator {
namespace {

// The journal's records grouped by job, in submission order.
struct JournaledJob {
  const v1::JobSubmitted* submitted = nullptr;
  std::vector<const v1::TaskCommitted*> committed;
  const v1::JobFinished* finished = nullptr;
};

absl::StatusOr<jobspec::JobInputs> OpenInputs(const v1::JobSpec& spec) {
  jobspec::JobInputs inputs{.model = {}, .hessians = std::nullopt};
  ASSIGN_OR_RETURN(inputs.model, SafetensorsModel::Open(spec.model().path()));
  if (spec.has_calibration()) {
    ASSIGN_OR_RETURN(inputs.hessians, SafetensorsModel::Open(spec.calibration().hessians()));
  }
  return inputs;
}

// Re-plans the job from its (possibly changed) inputs: FAILED_PRECONDITION
// with the reason if they no longer give the journaled plan.
absl::StatusOr<Plan> Replan(const JobEntry& job, const v1::JobSubmitted& submitted,
                            std::shared_ptr<const jobspec::JobInputs>* inputs) {
  const v1::JobSpec& spec = job.job.definition().spec();
  auto refuse = [&](const std::string& why) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot resume after a restart: ", why,
                     "; submit the job again (its output was not written)"));
  };
  absl::StatusOr<jobspec::JobInputs> opened = OpenInputs(spec);
  if (!opened.ok()) return refuse(std::string(opened.status().message()));
  absl::StatusOr<v1::InputFingerprint> fp = Fingerprint(spec, *opened);
  if (!fp.ok()) return refuse(std::string(fp.status().message()));
  if (std::string diff = FingerprintDifference(submitted.fingerprint(), *fp); !diff.empty()) {
    return refuse(absl::StrCat("the inputs changed since submission (", diff, ")"));
  }
  absl::StatusOr<Plan> plan = PlanJob(spec, *opened, {job.id()});
  if (!plan.ok()) return refuse(std::string(plan.status().message()));
  bool same = plan->tasks.size() == static_cast<size_t>(submitted.task_ids_size());
  for (size_t i = 0; same && i < plan->tasks.size(); ++i) {
    same = plan->tasks[i].id() == submitted.task_ids(static_cast<int>(i));
  }
  if (!same) return refuse("the plan changed (a different glvq version?)");
  *inputs = std::make_shared<const jobspec::JobInputs>(*std::move(opened));
  return plan;
}

}  // namespace

absl::Status Scheduler::Recover(const std::vector<v1::JournalRecord>& records) {
  std::map<std::string, JournaledJob> by_id;
  std::vector<std::string> order;
  for (const v1::JournalRecord& r : records) {
    if (r.has_submitted()) {
      const std::string& id = r.submitted().job().id();
      if (!by_id.contains(id)) order.push_back(id);
      by_id[id].submitted = &r.submitted();
    } else if (r.has_committed() && by_id.contains(r.committed().job_id())) {
      by_id[r.committed().job_id()].committed.push_back(&r.committed());
    } else if (r.has_finished() && by_id.contains(r.finished().job_id())) {
      by_id[r.finished().job_id()].finished = &r.finished();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : order) {
    const JournaledJob& j = by_id[id];
    auto job = std::make_unique<JobEntry>();
    job->job = j.submitted->job();
    job->request_id = j.submitted->request_id();
    job->fingerprint = j.submitted->fingerprint();
    if (!job->request_id.empty()) request_ids_[job->request_id] = id;
    // Ids end in "-<number>": new jobs continue after the highest.
    uint64_t number = 0;
    if (absl::SimpleAtoi(id.substr(id.rfind('-') + 1), &number)) {
      next_job_number_ = std::max(next_job_number_, number + 1);
    }
    JobEntry* entry = job.get();
    jobs_[id] = std::move(job);
    job_order_.push_back(id);
    if (j.finished != nullptr) {
      v1::JobStatus& status = *entry->job.mutable_status();
      status.set_state(j.finished->state());
      status.set_error_code(j.finished->error_code());
      status.set_error_message(j.finished->error_message());
      entry->final_progress = j.finished->progress();
      // Left behind if the coordinator stopped before it removed them.
      to_clean_.push_back({id, 0});
      continue;
    }
    ResumeJob(entry, *j.submitted, j.committed);
  }
  return absl::OkStatus();
}

void Scheduler::ResumeJob(JobEntry* job, const v1::JobSubmitted& submitted,
                          const std::vector<const v1::TaskCommitted*>& committed) {
  const absl::Time now = absl::Now();
  absl::StatusOr<Plan> plan = Replan(*job, submitted, &job->inputs);
  if (!plan.ok()) {
    GLVQ_LOG(kWarn) << "job " << job->id() << ": " << plan.status();
    FinishJob(job, v1::JOB_STATE_FAILED, plan.status(), "");
    return;
  }
  for (v1::Task& task : plan->tasks) job->AddPlannedTask(std::move(task));
  // A task stays committed only if its stored result still checks out.
  size_t kept = 0;
  for (const v1::TaskCommitted* c : committed) {
    const auto it = job->task_index.find(c->task_id());
    if (it == job->task_index.end() || job->tasks[it->second].phase == TaskSlot::Phase::kCommitted) {
      continue;
    }
    absl::StatusOr<StoredResult> stored = store_->ReadResult(job->id(), c->task_id());
    if (!stored.ok() || stored->header.payload_crc32c() != c->header().payload_crc32c()) {
      GLVQ_LOG(kWarn) << "job " << job->id() << ": task " << c->task_id()
                      << " is redone: its stored result is unusable ("
                      << (stored.ok() ? "checksum differs" : stored.status().ToString()) << ")";
      continue;
    }
    job->Commit(job->tasks[it->second], c->header());
    ++kept;
  }
  job->run_started = now;
  job->weights_at_run_start = job->weights_done;
  job->job.mutable_status()->set_state(v1::JOB_STATE_RUNNING);
  job->AddMessageEvent(now, absl::StrCat("resumed after a restart: ", kept, " of ",
                                         job->tasks.size(), " tasks already committed"));
  GLVQ_LOG(kInfo) << "job " << job->id() << ": resumed, " << kept << " of " << job->tasks.size()
                  << " tasks already committed";
  if (job->tasks_done == job->tasks.size()) {
    job->job.mutable_status()->set_state(v1::JOB_STATE_FINALIZING);
    to_finalize_.push_back(job->id());
  }
}

}  // namespace glvq::coordinator
