// One GPU's span of column groups, quantized in consecutive batches: each
// batch gets a workspace of its own, sized from the GPU's free memory
// (batch_plan.h), holding only that batch's inputs. A batch that still runs
// out of device memory (an allocation, a kernel launch or cuBLAS failing
// with RESOURCE_EXHAUSTED) is freed and redone as batches half its size.
//
// Groups are independent and every kernel and cuBLAS call works on one
// group's data with the same shapes whatever the batch (glvq_kernels.h),
// so the results do not depend on the batch sizes.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "absl/status/status.h"
#include "worker/cuda/device_workspace.h"
#include "worker/engine/quantizer.h"

namespace glvq::cuda {

struct TaskInputs {
  engine::MatrixView w;  // rows × cols, host memory, borrowed for the call
  int64_t group_size = 128;
  int dim = 8;
  // [groups] damped Hessian blocks (width × width), or empty for H = I.
  std::span<const Eigen::MatrixXd> hessian;
};

// Consecutive groups of a task on one device.
struct DeviceSpan {
  int device = 0;
  int64_t first_group = 0;
  int64_t groups = 0;
};

// A batch of a span, its inputs on the device in `ws` (group 0 of the
// workspace is the task's group first_group).
struct GroupBatch {
  int64_t first_group = 0;
  int64_t groups = 0;
  DeviceWorkspace* ws = nullptr;
};

// Work on one batch. It must write results of its own groups only, and may
// be called again for some of them after a RESOURCE_EXHAUSTED.
using BatchFn = std::function<absl::Status(const GroupBatch&)>;

// The workspace shape for the groups of `span`; its weights are those
// groups' columns, or every column of the task (whole_task).
SpanShape ShapeOf(const TaskInputs& in, const DeviceSpan& span, bool whole_task);

// Runs fn on consecutive batches covering `span` (inputs uploaded from the
// host), each planned from the device's free memory at that moment.
// *max_batch_groups caps the batches (0: no cap) and is lowered after a
// batch runs out of memory, so that the caller's next pass starts there.
// When the whole span ran as one batch its workspace is handed to *kept
// (the caller's next pass can reuse it); else *kept is left empty.
// RESOURCE_EXHAUSTED when a single group does not fit; other errors are
// fn's, CUDA's and cuBLAS's.
absl::Status RunInBatches(const TaskInputs& in, const DeviceSpan& span, int64_t* max_batch_groups,
                          const BatchFn& fn, std::unique_ptr<DeviceWorkspace>* kept);

}  // namespace glvq::cuda
