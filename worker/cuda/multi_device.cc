#include "worker/cuda/multi_device.h"

#include <algorithm>
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
#endif

SpanShape ShapeOf(const TaskInputs& in, const DeviceSpan& span, bool whole_task) {
  SpanShape s;
  s.device = span.device;
  s.rows = in.w.rows;
  s.group_size = static_cast<int32_t>(in.group_size);
  s.dim = in.dim;
  int64_t span_cols = 0;
  for (int64_t g = span.first_group; g < span.first_group + span.groups; ++g) {
    const int64_t width = std::min(in.group_size, in.w.cols - g * in.group_size);
    s.widths.push_back(static_cast<int32_t>(width));
    span_cols += width;
  }
  s.hessian = !in.hessian.empty();
  s.weight_elements = in.w.rows * (whole_task ? in.w.cols : span_cols);
  s.hessian_groups =
      s.hessian ? (whole_task ? static_cast<int64_t>(in.hessian.size()) : span.groups) : 0;
  return s;
}

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
                                                                 std::span<const int> devices) {
  std::unique_ptr<TaskDevices> t(new TaskDevices());
  const int64_t groups = (in.w.cols + in.group_size - 1) / in.group_size;
  t->spans_ = SplitGroups(groups, devices);
  const bool broadcast = GLVQ_HAVE_NCCL && t->spans_.size() > 1;
  for (const DeviceSpan& span : t->spans_) {
    ASSIGN_OR_RETURN(std::unique_ptr<DeviceWorkspace> ws,
                     DeviceWorkspace::Create(ShapeOf(in, span, broadcast)));
    t->ws_.push_back(std::move(ws));
  }
  if (broadcast) {
    RETURN_IF_ERROR(t->Broadcast(in));
  } else {
    RETURN_IF_ERROR(t->Distribute(in));
  }
  return t;
}

// Each span's own columns and Hessian blocks, straight from the host.
absl::Status TaskDevices::Distribute(const TaskInputs& in) {
  for (size_t i = 0; i < spans_.size(); ++i) {
    const DeviceSpan& s = spans_[i];
    int64_t cols = 0;
    for (int32_t w : ws_[i]->shape().widths) cols += w;
    RETURN_IF_ERROR(
        ws_[i]->UploadWeights(in.w.data + s.first_group * in.group_size, in.w.cols, cols));
    if (!in.hessian.empty()) {
      RETURN_IF_ERROR(ws_[i]->UploadHessian(
          in.hessian.subspan(static_cast<size_t>(s.first_group), static_cast<size_t>(s.groups))));
    }
  }
  return absl::OkStatus();
}

absl::Status TaskDevices::ForEach(const std::function<absl::Status(size_t)>& fn) {
  std::vector<absl::Status> status(spans_.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < spans_.size(); ++i) {
    threads.emplace_back([&, i] { status[i] = fn(i); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : status) RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

// The whole task to the first device, then ncclBroadcast to the others;
// each workspace then views its own columns and blocks.
absl::Status TaskDevices::Broadcast(const TaskInputs& in) {
#if GLVQ_HAVE_NCCL
  std::vector<int> devices;
  for (const DeviceSpan& s : spans_) devices.push_back(s.device);
  comms_.resize(devices.size(), nullptr);
  const ncclResult_t init =
      ncclCommInitAll(comms_.data(), static_cast<int>(devices.size()), devices.data());
  if (init != ncclSuccess) {
    comms_.clear();  // their state after a failed init is unspecified: never destroy them
    return NcclStatus(init, "ncclCommInitAll");
  }
  DeviceWorkspace& root = *ws_[0];
  RETURN_IF_ERROR(root.UploadWeights(in.w.data, in.w.cols, in.w.cols));
  if (!in.hessian.empty()) RETURN_IF_ERROR(root.UploadHessian(in.hessian));
  const auto weights = static_cast<size_t>(in.w.rows * in.w.cols);
  const size_t blocks =
      in.hessian.size() * static_cast<size_t>(BlockStride(static_cast<int32_t>(in.group_size)));
  NCCL_RETURN_IF_ERROR(ncclGroupStart());
  for (size_t i = 0; i < ws_.size(); ++i) {
    NCCL_RETURN_IF_ERROR(ncclBroadcast(root.weight_storage(), ws_[i]->weight_storage(), weights,
                                       ncclFloat, 0, comms_[i], nullptr));
    if (blocks > 0) {
      NCCL_RETURN_IF_ERROR(ncclBroadcast(root.hessian_storage(), ws_[i]->hessian_storage(), blocks,
                                         ncclDouble, 0, comms_[i], nullptr));
    }
  }
  NCCL_RETURN_IF_ERROR(ncclGroupEnd());
  for (size_t i = 0; i < ws_.size(); ++i) {
    CUDA_RETURN_IF_ERROR(cudaSetDevice(spans_[i].device));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(nullptr));
    ws_[i]->SetWeightView(spans_[i].first_group * in.group_size, in.w.cols);
    ws_[i]->SetHessianOffset(spans_[i].first_group);
  }
  return absl::OkStatus();
#else
  (void)in;
  return absl::InternalError("NCCL broadcast in a build without NCCL");
#endif
}

TaskDevices::~TaskDevices() {
#if GLVQ_HAVE_NCCL
  for (ncclComm* c : comms_) {
    if (c != nullptr) ncclCommDestroy(c);
  }
#endif
}

absl::Status TaskDevices::GatherCodes(std::span<const int64_t> offsets,
                                      const std::vector<const uint8_t*>& packed,
                                      std::span<uint8_t> codes) {
  auto bytes_of = [&](size_t i) {
    const DeviceSpan& s = spans_[i];
    return static_cast<size_t>(offsets[s.first_group + s.groups] - offsets[s.first_group]);
  };
  if (comms_.empty()) {  // span by span to the host
    for (size_t i = 0; i < spans_.size(); ++i) {
      CUDA_RETURN_IF_ERROR(cudaSetDevice(spans_[i].device));
      CUDA_RETURN_IF_ERROR(cudaMemcpy(codes.data() + offsets[spans_[i].first_group], packed[i],
                                      bytes_of(i), cudaMemcpyDeviceToHost));
    }
    return absl::OkStatus();
  }
#if GLVQ_HAVE_NCCL
  // Every span's stream onto the first device, in place, then one copy out.
  CUDA_RETURN_IF_ERROR(cudaSetDevice(spans_[0].device));
  DeviceArray<uint8_t> all;
  RETURN_IF_ERROR(all.Allocate(codes.size()));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(all.get(), packed[0], bytes_of(0), cudaMemcpyDeviceToDevice));
  NCCL_RETURN_IF_ERROR(ncclGroupStart());
  for (size_t i = 1; i < spans_.size(); ++i) {
    NCCL_RETURN_IF_ERROR(ncclSend(packed[i], bytes_of(i), ncclUint8, 0, comms_[i], nullptr));
    NCCL_RETURN_IF_ERROR(ncclRecv(all.get() + offsets[spans_[i].first_group], bytes_of(i),
                                  ncclUint8, static_cast<int>(i), comms_[0], nullptr));
  }
  NCCL_RETURN_IF_ERROR(ncclGroupEnd());
  for (size_t i = 0; i < spans_.size(); ++i) {
    CUDA_RETURN_IF_ERROR(cudaSetDevice(spans_[i].device));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(nullptr));
  }
  CUDA_RETURN_IF_ERROR(cudaSetDevice(spans_[0].device));
  return all.Download(codes);
#else
  return absl::InternalError("NCCL gather in a build without NCCL");
#endif
}

}  // namespace glvq::cuda
