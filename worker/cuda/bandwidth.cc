#include "worker/cuda/bandwidth.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"

namespace glvq::cuda {
namespace {

// Device buffers and events freed on every path.
struct CopyResources {
  void* src = nullptr;
  void* dst = nullptr;
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  ~CopyResources() {
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
    if (src != nullptr) cudaFree(src);
    if (dst != nullptr) cudaFree(dst);
  }
};

}  // namespace

absl::StatusOr<double> MeasureCopyBandwidth(int device, size_t bytes) {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  CopyResources r;
  CUDA_RETURN_IF_ERROR(cudaMalloc(&r.src, bytes));
  CUDA_RETURN_IF_ERROR(cudaMalloc(&r.dst, bytes));
  CUDA_RETURN_IF_ERROR(cudaMemset(r.src, 1, bytes));
  CUDA_RETURN_IF_ERROR(cudaEventCreate(&r.start));
  CUDA_RETURN_IF_ERROR(cudaEventCreate(&r.stop));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(r.dst, r.src, bytes, cudaMemcpyDeviceToDevice));  // warm-up
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    CUDA_RETURN_IF_ERROR(cudaEventRecord(r.start));
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(r.dst, r.src, bytes, cudaMemcpyDeviceToDevice));
    CUDA_RETURN_IF_ERROR(cudaEventRecord(r.stop));
    CUDA_RETURN_IF_ERROR(cudaEventSynchronize(r.stop));
    float ms = 0;
    CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, r.start, r.stop));
    if (ms > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9);
  }
  return best;
}

}  // namespace glvq::cuda
