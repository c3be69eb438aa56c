// Code packing on the device, one thread per output byte (no atomics), in
// the bit layout of common/packed/layout.h.
#include "worker/cuda/codec_kernels.h"

namespace glvq::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void PackCodesKernel(const PackGroup* groups, int64_t rows, const uint8_t* src,
                                uint8_t* dst) {
  const PackGroup pg = groups[blockIdx.x];
  const uint64_t n = static_cast<uint64_t>(rows) * pg.width;
  const uint64_t bytes = (n * pg.bits + 7) / 8;
  const uint32_t mask = (1u << pg.bits) - 1u;
  const uint64_t stride = static_cast<uint64_t>(gridDim.y) * blockDim.x;
  for (uint64_t j = static_cast<uint64_t>(blockIdx.y) * blockDim.x + threadIdx.x; j < bytes;
       j += stride) {
    // Codes k0 .. k1 − 1 have bits inside byte j: stream bits [8j, 8j + 8).
    const uint64_t first_bit = 8 * j;
    const uint64_t k0 = first_bit / pg.bits;
    uint64_t k1 = (first_bit + 8 + pg.bits - 1) / pg.bits;
    if (k1 > n) k1 = n;
    uint32_t acc = 0;
    for (uint64_t k = k0; k < k1; ++k) {
      const uint64_t r = k / pg.width, c = k % pg.width;
      const uint32_t code = src[pg.src_offset + r * pg.src_ld + c] & mask;
      const int64_t shift = static_cast<int64_t>(packed::CodeBitPosition(k, pg.bits)) -
                            static_cast<int64_t>(first_bit);
      acc |= shift >= 0 ? code << shift : code >> (-shift);
    }
    dst[pg.dst_offset + j] = static_cast<uint8_t>(acc & 0xFFu);
  }
}

}  // namespace

cudaError_t LaunchPackCodes(const PackGroup* d_groups, int32_t groups, int64_t rows,
                            uint64_t max_bytes, const uint8_t* d_src, uint8_t* d_dst) {
  if (groups == 0 || max_bytes == 0) return cudaSuccess;
  uint64_t y = (max_bytes + kThreads - 1) / kThreads;
  if (y > 4096) y = 4096;
  PackCodesKernel<<<dim3(static_cast<unsigned>(groups), static_cast<unsigned>(y)), kThreads>>>(
      d_groups, rows, d_src, d_dst);
  return cudaGetLastError();
}

}  // namespace glvq::cuda
