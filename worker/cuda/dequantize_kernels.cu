// GLVQ dequantization on the device, mirroring DecodeGlvqGroup of
// common/packed/quantized_tensor.cc operation by operation (compiled with
// --fmad=false, and the products and sums spelled as _rn intrinsics).
#include <math.h>

#include "worker/cuda/codec_kernels.h"

namespace glvq::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxDim = static_cast<int>(packed::kMaxLatticeDim);

// True when `v` lies within a relative 2^-44 of a float rounding boundary:
// far more than the few double ulps by which the device's expm1 and the
// host's can differ, so an unflagged weight rounds to the same float.
__device__ bool NearFloatBoundary(double v) {
  if (v == 0.0 || !isfinite(v)) return false;
  const double eps = 5.684341886080801486968994140625e-14;  // 2^-44
  const float lo = __double2float_rn(__dmul_rn(v, 1.0 - eps));
  const float hi = __double2float_rn(__dmul_rn(v, 1.0 + eps));
  return __float_as_uint(lo) != __float_as_uint(hi);
}

__global__ void DequantizeGlvqKernel(const uint8_t* codes, GlvqSideInfo s, int64_t rows,
                                     int64_t cols, float* out, RoundingFlags flags) {
  const int g = blockIdx.x;
  const packed::GroupDesc gd = s.groups[g];
  const int d = static_cast<int>(gd.dim), wg = static_cast<int>(gd.width);
  const int nvec = (wg + d - 1) / d;
  const double center = static_cast<double>(1u << (gd.bits - 1)) - 0.5;
  const double mu = s.mu[g], lg = s.log1p_mu[g], scale = s.scale[g];
  const float* gen = s.generators + static_cast<int64_t>(g) * d * d;
  const uint8_t* stream = codes + gd.code_offset;
  const int64_t items = rows * nvec;
  for (int64_t item = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; item < items;
       item += static_cast<int64_t>(gridDim.y) * blockDim.x) {
    const int64_t r = item / nvec;
    const int c0 = static_cast<int>(item % nvec) * d;
    const int k = wg - c0 < d ? wg - c0 : d;  // a short last vector: G's leading k × k block
    double z[kMaxDim];
    for (int j = 0; j < k; ++j) {
      const uint64_t code = static_cast<uint64_t>(r) * wg + c0 + j;
      z[j] = static_cast<double>(packed::ExtractCode(stream, code, gd.bits)) - center;
    }
    for (int i = 0; i < k; ++i) {
      double y = 0.0;
      for (int j = 0; j < k; ++j) {
        y = __dadd_rn(y, __dmul_rn(static_cast<double>(gen[i * d + j]), z[j]));
      }
      double v = y;
      if (mu != 0.0) v = copysign(__ddiv_rn(expm1(__dmul_rn(fabs(y), lg)), mu), y);
      const double o = __dmul_rn(scale, v);
      const int64_t idx = r * cols + gd.first_col + c0 + i;
      out[idx] = __double2float_rn(o);
      if (mu != 0.0 && NearFloatBoundary(o)) {
        const uint32_t slot = atomicAdd(flags.count, 1u);
        if (slot < flags.capacity) flags.indices[slot] = static_cast<uint64_t>(idx);
      }
    }
  }
}

}  // namespace

cudaError_t LaunchDequantizeGlvq(const uint8_t* d_codes, GlvqSideInfo side, int32_t groups,
                                 int64_t rows, int64_t cols, int64_t max_vectors_per_row,
                                 float* d_out, RoundingFlags flags) {
  if (groups == 0) return cudaSuccess;
  int64_t y = (rows * max_vectors_per_row + kThreads - 1) / kThreads;
  y = y < 1 ? 1 : (y > 4096 ? 4096 : y);
  DequantizeGlvqKernel<<<dim3(static_cast<unsigned>(groups), static_cast<unsigned>(y)), kThreads>>>(
      d_codes, side, rows, cols, d_out, flags);
  return cudaGetLastError();
}

}  // namespace glvq::cuda
