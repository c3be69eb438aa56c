// WorkerService (proto/glvq/v1/services.proto) over the Scheduler: the
// streaming parts live here — FetchTensor cuts the task's inputs into
// checksummed chunks, UploadResult checks every chunk as it arrives.
#pragma once

#include "common/rpc/security.h"
#include "coordinator/scheduler.h"
#include "glvq/v1/services.grpc.pb.h"

namespace glvq::coordinator {

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // Borrows both; `auth` checks every call's token (docs/security.md).
  WorkerServiceImpl(Scheduler* scheduler, const rpc::Authenticator* auth)
      : scheduler_(scheduler), auth_(auth) {}

  grpc::Status RegisterWorker(grpc::ServerContext* context,
                              const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override;
  grpc::Status PullTask(grpc::ServerContext* context, const v1::PullTaskRequest* request,
                        v1::PullTaskResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status FetchTensor(grpc::ServerContext* context, const v1::FetchTensorRequest* request,
                           grpc::ServerWriter<v1::FetchTensorResponse>* writer) override;
  // DATA_LOSS as soon as a chunk fails its CRC32C or the payload its
  // header; the worker uploads again.
  grpc::Status UploadResult(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UploadResultRequest>* reader,
                            v1::UploadResultResponse* response) override;
  grpc::Status ReportTaskFailure(grpc::ServerContext* context,
                                 const v1::ReportTaskFailureRequest* request,
                                 v1::ReportTaskFailureResponse* response) override;
  grpc::Status DeregisterWorker(grpc::ServerContext* context,
                                const v1::DeregisterWorkerRequest* request,
                                v1::DeregisterWorkerResponse* response) override;

 private:
  Scheduler* scheduler_;
  const rpc::Authenticator* auth_;
};

// The bytes FetchTensor streams for `what` of `task` (services.proto).
absl::StatusOr<std::string> FetchTensorBytes(const v1::Task& task,
                                             v1::FetchTensorRequest::What what);

}  // namespace glvq::coordinator
