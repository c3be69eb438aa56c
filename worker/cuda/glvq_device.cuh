// Device-side helpers shared by the GLVQ kernels: indexing of the
// group-major work buffers, the companding curve as the CPU reference
// computes it, and a deterministic per-(group, chunk) reduction.
//
// Arithmetic that the CPU reference does as separate multiply and add is
// written with __dmul_rn / __dadd_rn here, so that nvcc cannot contract it
// into an FMA and the kernels round as the CPU does wherever the order of
// operations is the same (Babai, decoding).
#pragma once

#include <cuda_runtime.h>
#include <math.h>

#include "worker/cuda/glvq_kernels.h"

namespace glvq::cuda::device {

constexpr int kThreads = 256;  // every kernel here runs blocks of this size
constexpr int kMaxDim = 32;    // packed::kMaxLatticeDim

__device__ inline int64_t SlabBase(const GroupLayout& l, int g) {
  return static_cast<int64_t>(g) * l.slab;
}

__device__ inline int64_t WorkIndex(const GroupLayout& l, int g, int64_t r, int c) {
  return SlabBase(l, g) + r * l.group_size + c;
}

__device__ inline float Weight(const GroupLayout& l, WeightView w, int g, int64_t r, int c) {
  return w.w[r * w.ldw + static_cast<int64_t>(g) * l.group_size + c];
}

// x = w / s, as the CPU's Context::x (double division, correctly rounded).
__device__ inline double Normalised(const GroupLayout& l, const GroupParams& p, WeightView w, int g,
                                    int64_t r, int c) {
  return __ddiv_rn(static_cast<double>(Weight(l, w, g, r, c)), static_cast<double>(p.scale[g]));
}

// cpu::Compand with ln(1 + µ) = `lg` precomputed on the host.
__device__ inline double Compand(double x, double mu, double lg) {
  if (mu < kDeviceMuOff) return x;
  return copysign(__ddiv_rn(log1p(__dmul_rn(mu, fabs(x))), lg), x);
}

// Eigen's sign(): −1, 0 or 1.
__device__ inline double Sign(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }

__device__ inline bool Active(const GroupParams& p, int g) {
  return p.active == nullptr || p.active[g] != 0;
}

// Items of a group handled by this thread: a grid-stride loop over
// [0, n) inside blockIdx.x's group, spread over gridDim.y blocks.
#define GLVQ_GROUP_LOOP(i, n)                                                            \
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.y) * blockDim.x)

// Blocks along y for `items` per group (element-wise kernels).
inline dim3 GroupGrid(int32_t groups, int64_t items) {
  int64_t y = (items + kThreads - 1) / kThreads;
  y = y < 1 ? 1 : (y > 4096 ? 4096 : y);
  return dim3(static_cast<unsigned>(groups), static_cast<unsigned>(y));
}

// Reduces `v` over the block in a fixed tree order (sum, or max with
// kMax) and stores the result at *out (thread 0).
template <bool kMax>
__device__ void BlockReduceStore(Sum2 v, Sum2* out) {
  __shared__ double sa[kThreads];
  __shared__ double sb[kThreads];
  sa[threadIdx.x] = v.a;
  sb[threadIdx.x] = v.b;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) {
      const int o = threadIdx.x + s;
      sa[threadIdx.x] = kMax ? fmax(sa[threadIdx.x], sa[o]) : sa[threadIdx.x] + sa[o];
      sb[threadIdx.x] = kMax ? fmax(sb[threadIdx.x], sb[o]) : sb[threadIdx.x] + sb[o];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = Sum2{sa[0], sb[0]};
}

// partials[g·chunks + chunk] = the sum (or max) of fn(g, r, c) over the
// rows of the chunk of group g (inactive groups: 0). Launch with
// grid (groups, chunks) and kThreads threads.
template <bool kMax, typename Fn>
__global__ void GroupReduceKernel(GroupLayout l, GroupParams p, Fn fn, Sum2* partials) {
  const int g = blockIdx.x, chunk = blockIdx.y, chunks = gridDim.y;
  Sum2 acc{0.0, 0.0};
  if (Active(p, g)) {
    const int wg = p.width[g];
    const int64_t per = (l.rows + chunks - 1) / chunks;
    const int64_t r0 = chunk * per;
    const int64_t r1 = r0 + per < l.rows ? r0 + per : l.rows;
    const int64_t n = r1 > r0 ? (r1 - r0) * wg : 0;
    for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
      const Sum2 v = fn(g, r0 + e / wg, static_cast<int>(e % wg));
      acc.a = kMax ? fmax(acc.a, v.a) : acc.a + v.a;
      acc.b = kMax ? fmax(acc.b, v.b) : acc.b + v.b;
    }
  }
  BlockReduceStore<kMax>(acc, &partials[static_cast<int64_t>(g) * chunks + chunk]);
}

template <bool kMax, typename Fn>
cudaError_t LaunchGroupReduce(const GroupLayout& l, const GroupParams& p, Fn fn, int chunks,
                              Sum2* partials) {
  if (l.groups == 0) return cudaSuccess;
  GroupReduceKernel<kMax><<<dim3(l.groups, chunks), kThreads>>>(l, p, fn, partials);
  return cudaGetLastError();
}

}  // namespace glvq::cuda::device
