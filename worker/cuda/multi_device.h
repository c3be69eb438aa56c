// One task on several GPUs: its column groups are cut into contiguous
// spans, one per GPU, and each span runs on its own host thread in batches
// sized from that GPU's free memory (batch_runner.h). The packed codes come
// back to the host batch by batch (cuda_quantizer.cc).
//
// In a build with NCCL and more than one span, when every GPU has room for
// its whole span beside the whole task's inputs and no batch cap is set,
// each GPU gets one workspace for its span up front: the weight matrix and
// the Hessian blocks are copied to the first GPU once and broadcast from it
// (ncclCommInitAll in-process). Otherwise each batch copies its own columns
// and blocks from the host.
//
// A group's result depends neither on the split nor on the batches: every
// kernel and every cuBLAS call works on one group's data with the same
// shapes (glvq_kernels.h), so any number of GPUs of one model, and any
// batch sizes, give the same bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/cuda/batch_runner.h"
#include "worker/cuda/device_workspace.h"

namespace glvq::cuda {

// Contiguous spans of near-equal size, in device order; devices beyond
// the number of groups get none (and are left out).
std::vector<DeviceSpan> SplitGroups(int64_t groups, std::span<const int> devices);

class TaskDevices {
 public:
  // `in`'s views must outlive the object. max_batch_groups > 0 caps the
  // groups of a batch (a test hook); 0 lets memory decide. Errors: CUDA's
  // and NCCL's (a broadcast that does not fit falls back to batches).
  static absl::StatusOr<std::unique_ptr<TaskDevices>> Create(const TaskInputs& in,
                                                             std::span<const int> devices,
                                                             int64_t max_batch_groups);
  TaskDevices(const TaskDevices&) = delete;
  TaskDevices& operator=(const TaskDevices&) = delete;

  size_t size() const { return spans_.size(); }
  const DeviceSpan& span(size_t i) const { return spans_[i]; }

  // Runs fn (see BatchFn) on every batch of every span: spans on their own
  // threads, a span's batches in order. A span that ran as one batch keeps
  // its workspace for the next call (SDBA's passes, then the solve). A
  // batch out of device memory is freed and redone smaller, so
  // RESOURCE_EXHAUSTED means a single group does not fit a GPU. Returns
  // the first error in span order.
  absl::Status ForEachBatch(const BatchFn& fn);

 private:
  explicit TaskDevices(const TaskInputs& in) : in_(in) {}
  absl::Status RunSpan(size_t i, const BatchFn& fn);
  absl::Status Broadcast();

  TaskInputs in_;
  std::vector<DeviceSpan> spans_;
  std::vector<int64_t> max_batch_;  // per span; lowered after an out-of-memory batch
  // Per span: a workspace holding the whole span (broadcast, or the last
  // pass ran as one batch), or null.
  std::vector<std::unique_ptr<DeviceWorkspace>> ws_;
};

}  // namespace glvq::cuda
