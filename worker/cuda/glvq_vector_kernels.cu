// Element- and vector-wise GLVQ kernels: companding, Babai rounding,
// decoding with the loss residual, SDBA's RTN residual, code copies.
// Sums run over j in index order from 0 with separate multiply and add,
// as the CPU reference's Eigen products do.
#include "worker/cuda/glvq_device.cuh"

namespace glvq::cuda {
namespace {

using device::kMaxDim;
using device::WorkIndex;

__global__ void CompandKernel(GroupLayout l, GroupParams p, WeightView w, double* y) {
  const int g = blockIdx.x;
  if (!device::Active(p, g)) return;
  const int wg = p.width[g];
  const double mu = p.mu[g], lg = p.log1p_mu[g];
  GLVQ_GROUP_LOOP(e, l.rows * wg) {
    const int64_t r = e / wg;
    const int c = static_cast<int>(e % wg);
    y[WorkIndex(l, g, r, c)] = device::Compand(device::Normalised(l, p, w, g, r, c), mu, lg);
  }
}

__global__ void BabaiKernel(GroupLayout l, GroupParams p, const double* y, uint8_t* codes) {
  const int g = blockIdx.x;
  if (!device::Active(p, g)) return;
  const int d = l.dim, wg = p.width[g], nvec = (wg + d - 1) / d;
  const double half = static_cast<double>(1 << (p.bits[g] - 1));
  GLVQ_GROUP_LOOP(item, l.rows * nvec) {
    const int64_t r = item / nvec;
    const int c0 = static_cast<int>(item % nvec) * d;
    const int k = wg - c0 < d ? wg - c0 : d;
    // A short last vector is rounded with the inverse of G's leading k × k block.
    const double* inv = (k == d ? p.gen_inv : p.tail_inv) + static_cast<int64_t>(g) * d * d;
    double yv[kMaxDim];
    for (int j = 0; j < k; ++j) yv[j] = y[WorkIndex(l, g, r, c0 + j)];
    for (int i = 0; i < k; ++i) {
      double u = 0.0;
      for (int j = 0; j < k; ++j) u = __dadd_rn(u, __dmul_rn(yv[j], inv[i * d + j]));
      if (!isfinite(u)) u = 0.0;  // a singular block; keep-best rejects it
      const double f = fmin(fmax(floor(u), -half), half - 1.0);
      codes[WorkIndex(l, g, r, c0 + i)] = static_cast<uint8_t>(static_cast<int>(f + half));
    }
  }
}

__global__ void DecodeDeltaKernel(GroupLayout l, GroupParams p, WeightView w, const uint8_t* codes,
                                  double* delta, double* yhat, double* zd) {
  const int g = blockIdx.x;
  if (!device::Active(p, g)) return;
  const int d = l.dim, wg = p.width[g], nvec = (wg + d - 1) / d;
  const double half = static_cast<double>(1 << (p.bits[g] - 1));
  const double mu = p.mu[g], lg = p.log1p_mu[g];
  const bool companded = mu >= kDeviceMuOff;
  const double* gen = p.gen + static_cast<int64_t>(g) * d * d;
  GLVQ_GROUP_LOOP(item, l.rows * nvec) {
    const int64_t r = item / nvec;
    const int c0 = static_cast<int>(item % nvec) * d;
    const int k = wg - c0 < d ? wg - c0 : d;
    double z[kMaxDim];
    for (int j = 0; j < k; ++j) {
      const int64_t idx = WorkIndex(l, g, r, c0 + j);
      z[j] = (static_cast<double>(codes[idx]) - half) + 0.5;
      zd[idx] = z[j];
    }
    for (int i = 0; i < k; ++i) {
      double yh = 0.0;
      for (int j = 0; j < k; ++j) yh = __dadd_rn(yh, __dmul_rn(z[j], gen[i * d + j]));
      const int64_t idx = WorkIndex(l, g, r, c0 + i);
      const double x = device::Normalised(l, p, w, g, r, c0 + i);
      double xhat = yh;
      if (companded) {
        const double pe = exp(__dmul_rn(fabs(yh), lg));
        xhat = __ddiv_rn(__dmul_rn(device::Sign(yh), pe - 1.0), mu);
      }
      yhat[idx] = yh;
      delta[idx] = x - xhat;
    }
  }
}

// One thread per (group, row): the row's absmax, then its RTN residuals
// (the CPU's RtnProxy).
__global__ void RtnDeltaKernel(GroupLayout l, GroupParams p, WeightView w, int bits,
                               double* delta) {
  const int g = blockIdx.x;
  const int wg = p.width[g];
  const double levels = static_cast<double>(1 << bits);
  GLVQ_GROUP_LOOP(r, l.rows) {
    double m = 0.0;
    for (int c = 0; c < wg; ++c) {
      m = fmax(m, fabs(static_cast<double>(device::Weight(l, w, g, r, c))));
    }
    const double step = m > 0 ? __ddiv_rn(__dmul_rn(2.0, m), levels) : 1.0;
    for (int c = 0; c < wg; ++c) {
      const double v = device::Weight(l, w, g, r, c);
      const double q = fmin(fmax(floor(__ddiv_rn(v, step)), -levels / 2), levels / 2 - 1) + 0.5;
      delta[WorkIndex(l, g, r, c)] = __dadd_rn(v, -__dmul_rn(q, step));
    }
  }
}

__global__ void CopyGroupCodesKernel(GroupLayout l, const uint8_t* improved, const uint8_t* from,
                                     uint8_t* to) {
  const int g = blockIdx.x;
  if (improved[g] == 0) return;
  const int64_t base = device::SlabBase(l, g);
  GLVQ_GROUP_LOOP(e, l.rows * l.group_size) to[base + e] = from[base + e];
}

}  // namespace

cudaError_t LaunchCompand(const GroupLayout& l, const GroupParams& p, WeightView w, double* y) {
  if (l.groups == 0) return cudaSuccess;
  CompandKernel<<<device::GroupGrid(l.groups, l.rows * l.group_size), device::kThreads>>>(l, p, w,
                                                                                          y);
  return cudaGetLastError();
}

cudaError_t LaunchBabai(const GroupLayout& l, const GroupParams& p, const double* y,
                        uint8_t* codes) {
  if (l.groups == 0) return cudaSuccess;
  const int64_t vectors = l.rows * ((l.group_size + l.dim - 1) / l.dim);
  BabaiKernel<<<device::GroupGrid(l.groups, vectors), device::kThreads>>>(l, p, y, codes);
  return cudaGetLastError();
}

cudaError_t LaunchDecodeDelta(const GroupLayout& l, const GroupParams& p, WeightView w,
                              const uint8_t* codes, double* delta, double* yhat, double* zd) {
  if (l.groups == 0) return cudaSuccess;
  const int64_t vectors = l.rows * ((l.group_size + l.dim - 1) / l.dim);
  DecodeDeltaKernel<<<device::GroupGrid(l.groups, vectors), device::kThreads>>>(l, p, w, codes,
                                                                                delta, yhat, zd);
  return cudaGetLastError();
}

cudaError_t LaunchRtnDelta(const GroupLayout& l, const GroupParams& p, WeightView w, int bits,
                           double* delta) {
  if (l.groups == 0) return cudaSuccess;
  RtnDeltaKernel<<<device::GroupGrid(l.groups, l.rows), device::kThreads>>>(l, p, w, bits, delta);
  return cudaGetLastError();
}

cudaError_t LaunchCopyGroupCodes(const GroupLayout& l, const uint8_t* improved, const uint8_t* from,
                                 uint8_t* to) {
  if (l.groups == 0) return cudaSuccess;
  CopyGroupCodesKernel<<<device::GroupGrid(l.groups, l.rows * l.group_size), device::kThreads>>>(
      l, improved, from, to);
  return cudaGetLastError();
}

}  // namespace glvq::cuda
