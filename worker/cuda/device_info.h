// What a worker reports about its GPUs (proto GpuInfo) and how much device
// memory its tasks may use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace glvq::cuda {

struct DeviceInfo {
  int index = 0;                   // CUDA device ordinal
  std::string name;                // e.g. "NVIDIA H100 80GB HBM3"
  uint64_t total_bytes = 0;        // device memory
  uint64_t free_bytes = 0;         // free when asked (other processes share it)
  std::string compute_capability;  // "major.minor", e.g. "9.0"
};

// Free and total memory of device `index` now (cudaMemGetInfo; other
// processes on the device count as used). Errors as CudaStatus.
struct DeviceMemory {
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};
absl::StatusOr<DeviceMemory> MemoryOf(int index);

// Every visible device, in ordinal order. UNAVAILABLE without a usable
// device or driver (as UsableDeviceCount); any failing CUDA call is a
// Status, never a crash.
absl::StatusOr<std::vector<DeviceInfo>> DescribeDevices();

}  // namespace glvq::cuda
