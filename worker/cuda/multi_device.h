// One task on several GPUs: its column groups are cut into contiguous
// spans, one DeviceWorkspace per GPU. Inputs reach the GPUs either by NCCL
// (a build with NCCL and more than one GPU: the whole weight matrix and the
// Hessian blocks are copied to the first GPU once and broadcast from it,
// ncclCommInitAll in-process) or by a host copy of each span's own columns
// and blocks; packed codes come back the same way (ncclSend/ncclRecv onto
// the first GPU, one copy to the host) or span by span.
//
// A group's result does not depend on the split: every kernel and every
// cuBLAS call works on one group's data with the same shapes whatever the
// span (glvq_kernels.h), so any number of GPUs of one model gives the same
// bytes.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/cuda/device_workspace.h"
#include "worker/engine/quantizer.h"

struct ncclComm;  // nccl.h's communicator, used only with NCCL

namespace glvq::cuda {

struct TaskInputs {
  engine::MatrixView w;  // rows × cols, host memory, borrowed for the call
  int64_t group_size = 128;
  int dim = 8;
  // [groups] damped Hessian blocks (width × width), or empty for H = I.
  std::span<const Eigen::MatrixXd> hessian;
};

struct DeviceSpan {
  int device = 0;
  int64_t first_group = 0;
  int64_t groups = 0;
};

// Contiguous spans of near-equal size, in device order; devices beyond
// the number of groups get none (and are left out).
std::vector<DeviceSpan> SplitGroups(int64_t groups, std::span<const int> devices);

class TaskDevices {
 public:
  // Allocates a workspace per span and gives it its inputs. Errors: those
  // of DeviceWorkspace::Create (RESOURCE_EXHAUSTED, ...), CUDA and NCCL.
  static absl::StatusOr<std::unique_ptr<TaskDevices>> Create(const TaskInputs& in,
                                                             std::span<const int> devices);
  ~TaskDevices();
  TaskDevices(const TaskDevices&) = delete;
  TaskDevices& operator=(const TaskDevices&) = delete;

  size_t size() const { return spans_.size(); }
  const DeviceSpan& span(size_t i) const { return spans_[i]; }
  DeviceWorkspace& workspace(size_t i) { return *ws_[i]; }

  // Runs fn(i) for every span, each on its own thread; returns the first
  // error in span order.
  absl::Status ForEach(const std::function<absl::Status(size_t)>& fn);

  // Copies span i's packed codes (packed[i], device memory of span i's
  // stream bytes) to codes[offsets[first group] ...]; `offsets` are the
  // tensor's group byte offsets ([groups + 1]).
  absl::Status GatherCodes(std::span<const int64_t> offsets,
                           const std::vector<const uint8_t*>& packed, std::span<uint8_t> codes);

 private:
  TaskDevices() = default;
  absl::Status Distribute(const TaskInputs& in);
  absl::Status Broadcast(const TaskInputs& in);

  std::vector<DeviceSpan> spans_;
  std::vector<std::unique_ptr<DeviceWorkspace>> ws_;
  std::vector<ncclComm*> comms_;  // one per span with NCCL and > 1 span, else empty
};

}  // namespace glvq::cuda
