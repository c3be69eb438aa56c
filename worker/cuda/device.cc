#include "worker/cuda/device.h"

#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"

namespace glvq::cuda {

absl::StatusOr<int> UsableDeviceCount() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls can retry
    const absl::Status status = CudaStatus(err, "cudaGetDeviceCount");
    return absl::UnavailableError(std::string(status.message()));
  }
  if (count <= 0) return absl::UnavailableError("no CUDA device is visible");
  return count;
}

}  // namespace glvq::cuda
