// Code unpacking on the device, sharing the bit layout with the CPU codec
// through common/packed/layout.h.
#include "common/packed/layout.h"
#include "worker/cuda/kernels.h"

namespace glvq::cuda {
namespace {

__global__ void UnpackCodesKernel(const uint8_t* packed, uint64_t count, uint32_t bits,
                                  uint8_t* codes) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t k = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < count;
       k += stride) {
    codes[k] = static_cast<uint8_t>(packed::ExtractCode(packed, k, bits));
  }
}

}  // namespace

cudaError_t LaunchUnpackCodes(const uint8_t* d_packed, uint64_t count, uint32_t bits,
                              uint8_t* d_codes, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const uint64_t wanted = (count + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(wanted < 65535 ? wanted : 65535);
  UnpackCodesKernel<<<blocks, kThreads, 0, stream>>>(d_packed, count, bits, d_codes);
  return cudaGetLastError();
}

}  // namespace glvq::cuda
