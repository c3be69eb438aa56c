// Per-group reductions of GLVQ learning: the scale, the kurtosis moments,
// mean squares, and the true loss with its µ gradient (the G gradient is a
// Gram product, done with cuBLAS by the host).
#include "worker/cuda/glvq_device.cuh"

namespace glvq::cuda {
namespace {

using device::Normalised;

struct MaxAbsFn {
  GroupLayout l;
  WeightView w;
  __device__ Sum2 operator()(int g, int64_t r, int c) const {
    return Sum2{fabs(static_cast<double>(device::Weight(l, w, g, r, c))), 0.0};
  }
};

// SampleKurtosis of the CPU: mean first, then centred second and fourth powers.
struct MomentsFn {
  GroupLayout l;
  GroupParams p;
  WeightView w;
  const double* mean;
  __device__ Sum2 operator()(int g, int64_t r, int c) const {
    const double x = Normalised(l, p, w, g, r, c);
    if (mean == nullptr) return Sum2{x, 0.0};
    const double dx = x - mean[g];
    const double d2 = __dmul_rn(dx, dx);
    return Sum2{d2, __dmul_rn(d2, d2)};
  }
};

struct SumSquaresFn {
  GroupLayout l;
  const double* v;
  __device__ Sum2 operator()(int g, int64_t r, int c) const {
    const double x = v[device::WorkIndex(l, g, r, c)];
    return Sum2{__dmul_rn(x, x), 0.0};
  }
};

// The CPU's Evaluate after Δ and r = Δ H: the loss term r·Δ and, with the
// gradient, ∂loss/∂ŷ (written over ŷ) and the ∂loss/∂µ term, in the CPU's
// order of operations.
struct LossTermsFn {
  GroupLayout l;
  GroupParams p;
  const double* r;
  const double* delta;
  double* yhat;
  bool gradient;
  __device__ Sum2 operator()(int g, int64_t row, int c) const {
    const int64_t i = device::WorkIndex(l, g, row, c);
    const double rv = r[i];
    const double loss = __dmul_rn(rv, delta[i]);
    if (!gradient) return Sum2{loss, 0.0};
    const double mu = p.mu[g];
    double gy = __dmul_rn(-2.0, rv);
    double dmu = 0.0;
    if (mu >= kDeviceMuOff) {
      const double lg = p.log1p_mu[g];
      const double yh = yhat[i];
      const double a = fabs(yh);
      const double pe = exp(__dmul_rn(a, lg));
      const double sign = device::Sign(yh);
      gy = __dmul_rn(gy, __ddiv_rn(__dmul_rn(lg, pe), mu));
      const double inner =
          __dadd_rn(__dmul_rn(__dmul_rn(a, pe), __ddiv_rn(mu, 1.0 + mu)), -(pe - 1.0));
      dmu = __ddiv_rn(__dmul_rn(__dmul_rn(__dmul_rn(-2.0, rv), sign), inner), __dmul_rn(mu, mu));
    }
    yhat[i] = gy;
    return Sum2{loss, dmu};
  }
};

__global__ void ColumnEnergyKernel(GroupLayout l, GroupParams p, WeightView w, double* energy) {
  const int g = blockIdx.x;
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= p.width[g]) return;
  double s = 0.0;
  for (int64_t r = 0; r < l.rows; ++r) {
    const double v = device::Weight(l, w, g, r, c);
    s = __dadd_rn(s, __dmul_rn(v, v));
  }
  energy[static_cast<int64_t>(g) * l.group_size + c] = s;
}

}  // namespace

cudaError_t LaunchGroupMaxAbs(const GroupLayout& l, const GroupParams& p, WeightView w, int chunks,
                              Sum2* partials) {
  GroupParams all = p;
  all.active = nullptr;
  return device::LaunchGroupReduce<true>(l, all, MaxAbsFn{l, w}, chunks, partials);
}

cudaError_t LaunchGroupMoments(const GroupLayout& l, const GroupParams& p, WeightView w,
                               const double* mean, int chunks, Sum2* partials) {
  return device::LaunchGroupReduce<false>(l, p, MomentsFn{l, p, w, mean}, chunks, partials);
}

cudaError_t LaunchGroupSumSquares(const GroupLayout& l, const GroupParams& p, const double* v,
                                  int chunks, Sum2* partials) {
  return device::LaunchGroupReduce<false>(l, p, SumSquaresFn{l, v}, chunks, partials);
}

cudaError_t LaunchLossTerms(const GroupLayout& l, const GroupParams& p, const double* r,
                            const double* delta, double* yhat, bool gradient, int chunks,
                            Sum2* partials) {
  return device::LaunchGroupReduce<false>(l, p, LossTermsFn{l, p, r, delta, yhat, gradient}, chunks,
                                          partials);
}

cudaError_t LaunchColumnEnergy(const GroupLayout& l, const GroupParams& p, WeightView w,
                               double* energy) {
  if (l.groups == 0) return cudaSuccess;
  const unsigned y =
      static_cast<unsigned>((l.group_size + device::kThreads - 1) / device::kThreads);
  ColumnEnergyKernel<<<dim3(l.groups, y), device::kThreads>>>(l, p, w, energy);
  return cudaGetLastError();
}

}  // namespace glvq::cuda
