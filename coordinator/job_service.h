// JobService (proto/glvq/v1/services.proto) over the Scheduler.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/rpc/security.h"
#include "coordinator/scheduler.h"
#include "glvq/v1/services.grpc.pb.h"

namespace glvq::coordinator {

class JobServiceImpl final : public v1::JobService::Service {
 public:
  // Borrows both; `auth` checks every call's token (docs/security.md).
  JobServiceImpl(Scheduler* scheduler, const rpc::Authenticator* auth)
      : scheduler_(scheduler), auth_(auth) {}

  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  // The current state first, then every event until the job ends. At most
  // options().limits.max_watchers at once: RESOURCE_EXHAUSTED beyond.
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;

 private:
  grpc::Status Watch(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                     grpc::ServerWriter<v1::JobEvent>* writer);

  Scheduler* scheduler_;
  const rpc::Authenticator* auth_;
  std::atomic<uint32_t> watchers_{0};
};

}  // namespace glvq::coordinator
