#include "worker/cuda/multi_device.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"

#ifndef GLVQ_HAVE_NCCL
#define GLVQ_HAVE_NCCL 0
#endif
#if GLVQ_HAVE_NCCL
#include <nccl.h>
#endif

namespace glvq::cuda {
namespace {

#if GLVQ_HAVE_NCCL
absl::Status NcclStatus(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", ncclGetErrorString(r)));
}
#define NCCL_RETURN_IF_ERROR(call) RETURN_IF_ERROR(NcclStatus((call), #call))

// The task's weights and Hessian blocks to ws[0], then to every workspace
// (ws[i] on comms[i]); returns once every device has them.
absl::Status BroadcastInputs(const TaskInputs& in,
                             std::span<const std::unique_ptr<DeviceWorkspace>> ws,
                             std::span<ncclComm*> comms) {
  DeviceWorkspace& root = *ws[0];
  RETURN_IF_ERROR(root.UploadWeights(in.w.data, in.w.cols, in.w.cols));
  if (!in.hessian.empty()) RETURN_IF_ERROR(root.UploadHessian(in.hessian));
  const auto weights = static_cast<size_t>(in.w.rows * in.w.cols);
  const size_t blocks =
      in.hessian.size() * static_cast<size_t>(BlockStride(static_cast<int32_t>(in.group_size)));
  NCCL_RETURN_IF_ERROR(ncclGroupStart());
  for (size_t i = 0; i < ws.size(); ++i) {
    NCCL_RETURN_IF_ERROR(ncclBroadcast(root.weight_storage(), ws[i]->weight_storage(), weights,
                                       ncclFloat, 0, comms[i], nullptr));
    if (blocks > 0) {
      NCCL_RETURN_IF_ERROR(ncclBroadcast(root.hessian_storage(), ws[i]->hessian_storage(), blocks,
                                         ncclDouble, 0, comms[i], nullptr));
    }
  }
  NCCL_RETURN_IF_ERROR(ncclGroupEnd());
  for (size_t i = 0; i < ws.size(); ++i) {
    CUDA_RETURN_IF_ERROR(cudaSetDevice(ws[i]->shape().device));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(nullptr));
  }
  return absl::OkStatus();
}
#endif

bool OutOfMemory(const absl::Status& s) { return s.code() == absl::StatusCode::kResourceExhausted; }

}  // namespace

std::vector<DeviceSpan> SplitGroups(int64_t groups, std::span<const int> devices) {
  std::vector<DeviceSpan> spans;
  const auto n = static_cast<int64_t>(devices.size());
  int64_t first = 0;
  for (int64_t i = 0; i < n && first < groups; ++i) {
    const int64_t count = groups / n + (i < groups % n ? 1 : 0);
    if (count == 0) continue;
    spans.push_back({devices[static_cast<size_t>(i)], first, count});
    first += count;
  }
  return spans;
}

absl::StatusOr<std::unique_ptr<TaskDevices>> TaskDevices::Create(const TaskInputs& in,
                                                                 std::span<const int> devices,
                                                                 int64_t max_batch_groups) {
  std::unique_ptr<TaskDevices> t(new TaskDevices(in));
  const int64_t groups = (in.w.cols + in.group_size - 1) / in.group_size;
  t->spans_ = SplitGroups(groups, devices);
  t->max_batch_.assign(t->spans_.size(), max_batch_groups);
  t->ws_.resize(t->spans_.size());
  if (GLVQ_HAVE_NCCL && t->spans_.size() > 1 && max_batch_groups == 0) {
    const absl::Status status = t->Broadcast();
    if (!OutOfMemory(status)) RETURN_IF_ERROR(status);
    if (!status.ok()) {
      for (std::unique_ptr<DeviceWorkspace>& ws : t->ws_) ws.reset();  // batches instead
    }
  }
  return t;
}

absl::Status TaskDevices::ForEachBatch(const BatchFn& fn) {
  std::vector<absl::Status> status(spans_.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < spans_.size(); ++i) {
    threads.emplace_back([&, i] { status[i] = RunSpan(i, fn); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : status) RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

absl::Status TaskDevices::RunSpan(size_t i, const BatchFn& fn) {
  const DeviceSpan& s = spans_[i];
  if (ws_[i] != nullptr) {
    const absl::Status status = fn({s.first_group, s.groups, ws_[i].get()});
    if (!OutOfMemory(status)) return status;
    ws_[i].reset();  // all of it freed before the batches are planned
    if (s.groups > 1) max_batch_[i] = s.groups / 2;
  }
  return RunInBatches(in_, s, &max_batch_[i], fn, &ws_[i]);
}

// A workspace per span holding the whole task's inputs: the task to the
// first device, then ncclBroadcast to the others; each workspace then views
// its own columns and blocks. RESOURCE_EXHAUSTED (before any broadcast)
// when a GPU lacks the room.
absl::Status TaskDevices::Broadcast() {
#if GLVQ_HAVE_NCCL
  for (size_t i = 0; i < spans_.size(); ++i) {
    ASSIGN_OR_RETURN(ws_[i], DeviceWorkspace::Create(ShapeOf(in_, spans_[i], /*whole_task=*/true)));
  }
  std::vector<int> devices;
  for (const DeviceSpan& s : spans_) devices.push_back(s.device);
  std::vector<ncclComm*> comms(devices.size(), nullptr);
  // After a failed init the communicators' state is unspecified: never destroy them.
  NCCL_RETURN_IF_ERROR(
      ncclCommInitAll(comms.data(), static_cast<int>(devices.size()), devices.data()));
  const absl::Status status = BroadcastInputs(in_, ws_, comms);
  // The communicators hold device memory that later batches may need.
  for (ncclComm* c : comms) ncclCommDestroy(c);
  RETURN_IF_ERROR(status);
  for (size_t i = 0; i < ws_.size(); ++i) {
    ws_[i]->SetWeightView(spans_[i].first_group * in_.group_size, in_.w.cols);
    ws_[i]->SetHessianOffset(spans_[i].first_group);
  }
  return absl::OkStatus();
#else
  return absl::InternalError("NCCL broadcast in a build without NCCL");
#endif
}

}  // namespace glvq::cuda
