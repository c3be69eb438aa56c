#include "worker/service/task_inputs.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/rpc/chunks.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/task_io.h"

namespace glvq::worker {
namespace {

constexpr int kFetchAttempts = 3;

// One FetchTensor stream, resumed at the received offset when it breaks.
absl::StatusOr<std::string> Fetch(v1::WorkerService::StubInterface& stub,
                                  v1::FetchTensorRequest request, uint64_t* received_bytes) {
  rpc::ChunkReceiver receiver;
  absl::Status last;
  for (int attempt = 0; attempt < kFetchAttempts; ++attempt) {
    request.set_offset(receiver.data().size());
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Minutes(10));
    auto reader = stub.FetchTensor(&context, request);
    v1::FetchTensorResponse message;
    uint64_t total = 0;
    while (reader->Read(&message)) {
      total = message.total_bytes();
      receiver.Reserve(total);
      *received_bytes += message.chunk().data().size();
      RETURN_IF_ERROR(receiver.Add(message.chunk()));
    }
    last = rpc::FromGrpcStatus(reader->Finish());
    if (last.ok() && receiver.data().size() == total) return receiver.Release();
    if (last.ok()) last = absl::UnavailableError("FetchTensor stream ended early");
    if (last.code() != absl::StatusCode::kUnavailable) break;
  }
  return last;
}

std::vector<double> AsDoubles(const std::string& bytes) {
  std::vector<double> out(bytes.size() / sizeof(double));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(double));
  return out;
}

}  // namespace

bool CanReadDirectly(const std::string& file, const std::vector<std::string>& shared_paths) {
  const std::filesystem::path path = std::filesystem::path(file).lexically_normal();
  for (const std::string& dir : shared_paths) {
    const std::string prefix = std::filesystem::path(dir).lexically_normal().string();
    const std::string p = path.string();
    const bool under = p == prefix || prefix == "/" ||
                       (p.starts_with(prefix) && p[prefix.size()] == '/');
    if (under) return ::access(file.c_str(), R_OK) == 0;
  }
  return false;
}

absl::StatusOr<quant::RangeData> ReadTaskInputs(const v1::Task& task) {
  ASSIGN_OR_RETURN(const quant::TensorFileRef weight, rpc::FileRefOf(task.source()));
  std::optional<quant::TensorFileRef> hessian;
  if (task.has_hessian()) {
    ASSIGN_OR_RETURN(hessian, rpc::FileRefOf(task.hessian()));
  }
  return quant::ReadRangeFromFiles(weight, hessian ? &*hessian : nullptr,
                                    task.quantizer().group_size(), task.groups().first(),
                                    task.groups().count());
}

absl::StatusOr<quant::RangeData> FetchTaskInputs(v1::WorkerService::StubInterface& stub,
                                                  const std::string& worker_id,
                                                  const v1::Lease& lease, const v1::Task& task,
                                                  uint64_t* received_bytes) {
  ASSIGN_OR_RETURN(const quant::ColumnSpan span, rpc::TaskColumns(task));
  ASSIGN_OR_RETURN(const quant::TensorFileRef weight, rpc::FileRefOf(task.source()));
  v1::FetchTensorRequest request;
  request.set_worker_id(worker_id);
  request.set_lease_id(lease.lease_id());
  request.set_task_id(task.id());
  request.set_what(v1::FetchTensorRequest::WHAT_WEIGHTS);
  ASSIGN_OR_RETURN(const std::string weights, Fetch(stub, request, received_bytes));
  std::vector<double> block, diagonal;
  if (task.has_hessian()) {
    request.set_what(v1::FetchTensorRequest::WHAT_HESSIAN);
    ASSIGN_OR_RETURN(const std::string b, Fetch(stub, request, received_bytes));
    request.set_what(v1::FetchTensorRequest::WHAT_HESSIAN_DIAGONAL);
    ASSIGN_OR_RETURN(const std::string d, Fetch(stub, request, received_bytes));
    block = AsDoubles(b);
    diagonal = AsDoubles(d);
  }
  const size_t expected = static_cast<size_t>(weight.shape[0] * span.width()) *
                          DTypeSize(weight.dtype);
  if (weights.size() != expected) {
    return absl::DataLossError(absl::StrCat(task.id(), ": fetched ", weights.size(),
                                            " weight bytes, expected ", expected));
  }
  return quant::MakeRangeData(weight.dtype, weight.shape[0], span.width(), weights,
                               std::move(block), diagonal);
}

}  // namespace glvq::worker
