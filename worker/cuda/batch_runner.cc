#include "worker/cuda/batch_runner.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cuda/batch_plan.h"
#include "worker/cuda/cuda_status.h"

namespace glvq::cuda {
namespace {

bool OutOfMemory(const absl::Status& s) { return s.code() == absl::StatusCode::kResourceExhausted; }

// Device bytes per group of a batch holding its own inputs: BytesNeeded is
// linear in the groups then, and group 0 is as wide as any.
uint64_t BytesPerGroup(const TaskInputs& in, int device) {
  return DeviceWorkspace::BytesNeeded(ShapeOf(in, {device, 0, 1}, /*whole_task=*/false));
}

// A workspace for `batch` with its columns and Hessian blocks, then fn.
// The workspace is left in *ws whatever the outcome.
absl::Status RunBatch(const TaskInputs& in, const DeviceSpan& batch, const BatchFn& fn,
                      std::unique_ptr<DeviceWorkspace>* ws) {
  ASSIGN_OR_RETURN(*ws, DeviceWorkspace::Create(ShapeOf(in, batch, /*whole_task=*/false)));
  int64_t cols = 0;
  for (int32_t w : (*ws)->shape().widths) cols += w;
  RETURN_IF_ERROR(
      (*ws)->UploadWeights(in.w.data + batch.first_group * in.group_size, in.w.cols, cols));
  if (!in.hessian.empty()) {
    RETURN_IF_ERROR((*ws)->UploadHessian(in.hessian.subspan(
        static_cast<size_t>(batch.first_group), static_cast<size_t>(batch.groups))));
  }
  return fn({batch.first_group, batch.groups, ws->get()});
}

absl::Status NoRoomForOneGroup(const TaskInputs& in, int device, const std::string& why) {
  return absl::ResourceExhaustedError(
      absl::StrCat("GLVQ on CUDA device ", device, ": a single group of ", in.w.rows, " rows × ",
                   std::min(in.group_size, in.w.cols), " columns does not fit: ", why));
}

}  // namespace

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

absl::Status RunInBatches(const TaskInputs& in, const DeviceSpan& span, int64_t* max_batch_groups,
                          const BatchFn& fn, std::unique_ptr<DeviceWorkspace>* kept) {
  kept->reset();
  const uint64_t per_group = BytesPerGroup(in, span.device);
  const int64_t end = span.first_group + span.groups;
  for (int64_t next = span.first_group; next < end;) {
    CUDA_RETURN_IF_ERROR(cudaSetDevice(span.device));
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::vector<int64_t> plan =
        PlanBatches(end - next, per_group, free_bytes, kDeviceHeadroomBytes, *max_batch_groups);
    if (plan.empty()) {
      return NoRoomForOneGroup(in, span.device,
                               absl::StrCat("it needs ", per_group, " bytes and ",
                                            kDeviceHeadroomBytes, " more are kept free; ",
                                            free_bytes, " of ", total_bytes, " are free"));
    }
    const DeviceSpan batch{span.device, next, plan.front()};
    std::unique_ptr<DeviceWorkspace> ws;
    const absl::Status status = RunBatch(in, batch, fn, &ws);
    if (OutOfMemory(status) && batch.groups > 1) {
      // Free everything before the next plan reads the free memory.
      ws.reset();
      *max_batch_groups = batch.groups / 2;
      continue;
    }
    if (OutOfMemory(status)) {
      return NoRoomForOneGroup(in, span.device, std::string(status.message()));
    }
    RETURN_IF_ERROR(status);
    if (batch.groups == span.groups) *kept = std::move(ws);
    next += batch.groups;
  }
  return absl::OkStatus();
}

}  // namespace glvq::cuda
