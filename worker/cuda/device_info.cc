#include "worker/cuda/device_info.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/device.h"

namespace glvq::cuda {
namespace {

absl::StatusOr<DeviceInfo> Describe(int index) {
  cudaDeviceProp prop{};
  CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, index));
  ASSIGN_OR_RETURN(const DeviceMemory memory, MemoryOf(index));
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.total_bytes = memory.total_bytes;
  info.free_bytes = memory.free_bytes;
  info.compute_capability = absl::StrCat(prop.major, ".", prop.minor);
  return info;
}

}  // namespace

absl::StatusOr<DeviceMemory> MemoryOf(int index) {
  // cudaMemGetInfo reports on the current device (and creates its context).
  CUDA_RETURN_IF_ERROR(cudaSetDevice(index));
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  return DeviceMemory{free_bytes, total_bytes};
}

absl::StatusOr<std::vector<DeviceInfo>> DescribeDevices() {
  ASSIGN_OR_RETURN(const int count, UsableDeviceCount());
  std::vector<DeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<DeviceInfo> info = Describe(i);
    if (!info.ok()) {
      return absl::UnavailableError(
          absl::StrCat("CUDA device ", i, " is not usable: ", info.status().message()));
    }
    devices.push_back(*std::move(info));
  }
  return devices;
}

}  // namespace glvq::cuda
