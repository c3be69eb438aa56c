#include "coordinator/worker_service.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/rpc/chunks.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/task_io.h"

namespace glvq::coordinator {
namespace {

// A result larger than this is refused before it is buffered.
constexpr uint64_t kMaxPayloadBytes = uint64_t{64} << 30;

std::string DoublesAsBytes(const std::vector<double>& v) {
  std::string out(v.size() * sizeof(double), '\0');
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

}  // namespace

absl::StatusOr<std::string> FetchTensorBytes(const v1::Task& task,
                                             v1::FetchTensorRequest::What what) {
  ASSIGN_OR_RETURN(const quant::ColumnSpan span, rpc::TaskColumns(task));
  switch (what) {
    case v1::FetchTensorRequest::WHAT_WEIGHTS: {
      ASSIGN_OR_RETURN(const quant::TensorFileRef ref, rpc::FileRefOf(task.source()));
      return quant::ReadWeightColumns(ref, span);
    }
    case v1::FetchTensorRequest::WHAT_HESSIAN:
    case v1::FetchTensorRequest::WHAT_HESSIAN_DIAGONAL: {
      if (!task.has_hessian()) {
        return absl::FailedPreconditionError(absl::StrCat(task.id(), " has no Hessian"));
      }
      ASSIGN_OR_RETURN(const quant::TensorFileRef ref, rpc::FileRefOf(task.hessian()));
      std::vector<double> values;
      if (what == v1::FetchTensorRequest::WHAT_HESSIAN) {
        ASSIGN_OR_RETURN(values, quant::ReadHessianBlock(ref, span));
      } else {
        ASSIGN_OR_RETURN(values, quant::ReadHessianDiagonal(ref));
      }
      return DoublesAsBytes(values);
    }
    default:
      return absl::InvalidArgumentError("FetchTensor: `what` must be set");
  }
}

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext* context,
                                               const v1::RegisterWorkerRequest* request,
                                               v1::RegisterWorkerResponse* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kWorker); !s.ok()) return s;
  *response = scheduler_->RegisterWorker(*request);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::PullTask(grpc::ServerContext* context,
                                         const v1::PullTaskRequest* request,
                                         v1::PullTaskResponse* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kWorker); !s.ok()) return s;
  auto r = scheduler_->PullTask(*request, [context] { return context->IsCancelled(); });
  if (!r.ok()) return rpc::ToGrpcStatus(r.status());
  *response = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* context,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kWorker); !s.ok()) return s;
  auto r = scheduler_->Heartbeat(*request);
  if (!r.ok()) return rpc::ToGrpcStatus(r.status());
  *response = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::FetchTensor(grpc::ServerContext* context,
                                            const v1::FetchTensorRequest* request,
                                            grpc::ServerWriter<v1::FetchTensorResponse>* writer) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kWorker); !s.ok()) return s;
  absl::StatusOr<v1::Task> task = scheduler_->TaskForFetch(*request);
  if (!task.ok()) return rpc::ToGrpcStatus(task.status());
  absl::StatusOr<std::string> bytes = FetchTensorBytes(*task, request->what());
  if (!bytes.ok()) return rpc::ToGrpcStatus(bytes.status());
  if (request->offset() > bytes->size()) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "offset beyond the end of the stream");
  }
  v1::FetchTensorResponse message;
  message.set_total_bytes(bytes->size());
  rpc::ForEachChunk(rpc::AsBytes(*bytes), request->offset(), [&](v1::Chunk& chunk) {
    message.mutable_chunk()->Swap(&chunk);
    if (context->IsCancelled() || !writer->Write(message)) return false;
    scheduler_->metrics().BytesStreamed(metrics::StreamDirection::kFetch,
                                        message.chunk().data().size());
    return true;
  });
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::UploadResult(grpc::ServerContext* context,
                                             grpc::ServerReader<v1::UploadResultRequest>* reader,
                                             v1::UploadResultResponse* response) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kWorker); !s.ok()) return s;
  v1::UploadResultRequest message;
  if (!reader->Read(&message) || !message.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "UploadResult: the first message must be the header");
  }
  const v1::TaskResultHeader header = message.header();
  if (header.payload_bytes() > kMaxPayloadBytes) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("result of ", header.payload_bytes(), " bytes is too large"));
  }
  rpc::ChunkReceiver receiver;
  receiver.Reserve(header.payload_bytes());
  while (reader->Read(&message)) {
    if (!message.has_chunk()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "UploadResult: only the first message may be a header");
    }
    scheduler_->metrics().BytesStreamed(metrics::StreamDirection::kUpload,
                                        message.chunk().data().size());
    if (absl::Status s = receiver.Add(message.chunk()); !s.ok()) {
      return rpc::ToGrpcStatus(absl::DataLossError(
          absl::StrCat("task ", header.task_id(), ": ", s.message(), "; upload again")));
    }
  }
  auto outcome = scheduler_->CommitResult(header, receiver.data());
  if (!outcome.ok()) return rpc::ToGrpcStatus(outcome.status());
  response->set_outcome(*outcome);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::ReportTaskFailure(grpc::ServerContext* context,
                                                  const v1::ReportTaskFailureRequest* request,
                                                  v1::ReportTaskFailureResponse*) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kWorker); !s.ok()) return s;
  return rpc::ToGrpcStatus(scheduler_->ReportFailure(*request));
}

grpc::Status WorkerServiceImpl::DeregisterWorker(grpc::ServerContext* context,
                                                 const v1::DeregisterWorkerRequest* request,
                                                 v1::DeregisterWorkerResponse*) {
  if (grpc::Status s = auth_->Check(*context, rpc::Role::kWorker); !s.ok()) return s;
  return rpc::ToGrpcStatus(scheduler_->DeregisterWorker(request->worker_id()));
}

}  // namespace glvq::coordinator
