#include "coordinator/job_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/grpc_util.h"

namespace glvq::coordinator {
namespace {

template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return rpc::ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext* context,
                                       const v1::SubmitJobRequest* request,
                                       v1::SubmitJobResponse* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kClient); !s.ok()) return s;
  return Reply(scheduler_->Submit(*request), response);
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                    v1::Job* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kClient); !s.ok()) return s;
  return Reply(scheduler_->GetJob(request->job_id()), response);
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* context,
                                      const v1::WatchJobRequest* request,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kClient); !s.ok()) return s;
  const uint32_t limit = scheduler_->options().limits.max_watchers;
  if (watchers_.fetch_add(1) >= limit) {
    watchers_.fetch_sub(1);
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            absl::StrCat(limit, " WatchJob streams are open, the most this coordinator serves "
                                "(--max-watchers); poll with GetJob instead")};
  }
  grpc::Status status = Watch(context, request, writer);
  watchers_.fetch_sub(1);
  return status;
}

grpc::Status JobServiceImpl::Watch(grpc::ServerContext* context,
                                   const v1::WatchJobRequest* request,
                                   grpc::ServerWriter<v1::JobEvent>* writer) {
  uint64_t after = request->after_sequence();
  absl::StatusOr<v1::JobEvent> current = scheduler_->CurrentEvent(request->job_id());
  if (!current.ok()) return rpc::ToGrpcStatus(current.status());
  // From the start, or from a sequence this coordinator never issued (the
  // client watched an earlier incarnation, before a restart): the current
  // state first.
  if (after == 0 || after > current->sequence()) {
    if (!writer->Write(*current)) return grpc::Status::OK;
    if (IsTerminal(current->state())) return grpc::Status::OK;
    after = current->sequence();
  }
  while (!context->IsCancelled()) {
    auto events =
        scheduler_->WaitForEvents(request->job_id(), after, absl::Now() + absl::Seconds(1));
    if (!events.ok()) return rpc::ToGrpcStatus(events.status());
    for (const v1::JobEvent& e : *events) {
      if (!writer->Write(e)) return grpc::Status::OK;
      after = e.sequence();
      if (IsTerminal(e.state())) return grpc::Status::OK;
    }
    if (events->empty()) {
      // No news: the job may have ended before `after` (a late watcher).
      absl::StatusOr<v1::Job> job = scheduler_->GetJob(request->job_id());
      if (!job.ok()) return rpc::ToGrpcStatus(job.status());
      if (IsTerminal(job->status().state())) {
        absl::StatusOr<v1::JobEvent> last = scheduler_->CurrentEvent(request->job_id());
        if (last.ok()) writer->Write(*last);
        return grpc::Status::OK;
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* context,
                                       const v1::CancelJobRequest* request, v1::Job* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kClient); !s.ok()) return s;
  return Reply(scheduler_->Cancel(request->job_id(), request->reason()), response);
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* context,
                                      const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kClient); !s.ok()) return s;
  return Reply(scheduler_->ListJobs(*request), response);
}

grpc::Status JobServiceImpl::ListWorkers(grpc::ServerContext* context,
                                         const v1::ListWorkersRequest*,
                                         v1::ListWorkersResponse* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kClient); !s.ok()) return s;
  *response = scheduler_->ListWorkers();
  return grpc::Status::OK;
}

}  // namespace glvq::coordinator
