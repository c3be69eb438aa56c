// Launch functions of the GLVQ learning kernels (worker/cuda/glvq_*.cu),
// callable from host C++ (C++17, no absl: this header goes through nvcc).
// One launch covers every column group of a span; group g has its own
// width, bits, scale, µ and d × d generator (GroupParams).
//
// Memory: every pointer is device memory owned by the caller. Work buffers
// are group-major: element (g, r, c) of a span lies at
// g·slab + r·group_size + c, slab = SlabElements(rows, group_size) (a
// narrower last group leaves its columns ≥ width unused). Slabs, and the
// per-group group_size² matrices (Hessian blocks, Gram products, BlockStride
// apart), start 256-byte aligned whatever a group's place in the span, so
// cuBLAS sees the same operands for a group on any split. The weights keep
// their source layout (WeightView). Functions return the launch status
// (cudaGetLastError); execution errors surface at the next synchronising
// call.
//
// Determinism: a group's results never depend on the other groups of the
// launch, and reductions write one partial per (group, chunk) with a chunk
// count that depends only on rows and group_size (ReduceChunks), summed on
// the host in chunk order — no atomics.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace glvq::cuda {

// Below this µ companding is the identity (worker/cpu/companding.h kMuOff).
inline constexpr double kDeviceMuOff = 1e-9;

struct GroupLayout {
  int32_t groups = 0;  // groups in the span
  int64_t rows = 0;
  int32_t group_size = 0;  // row stride of the work buffers
  int32_t dim = 0;         // vector dimension d (≤ 32)
  int64_t slab = 0;        // elements per group in the work buffers
};

// rows · group_size rounded up to 32 elements (256 bytes of doubles).
inline int64_t SlabElements(int64_t rows, int32_t group_size) {
  return (rows * group_size + 31) / 32 * 32;
}
// Elements between the group_size² matrices of consecutive groups.
inline int64_t BlockStride(int32_t group_size) {
  return (static_cast<int64_t>(group_size) * group_size + 31) / 32 * 32;
}

// Per-group parameters, [groups] each; matrices [groups, d, d] row-major.
struct GroupParams {
  const int32_t* width = nullptr;    // columns of the group
  const int32_t* bits = nullptr;     // code bits, 1..8
  const float* scale = nullptr;      // s_g > 0: x = w / s_g
  const double* mu = nullptr;        // µ_g (< kDeviceMuOff: no companding)
  const double* log1p_mu = nullptr;  // std::log1p(µ_g), computed on the host
  const double* gen = nullptr;       // G
  const double* gen_inv = nullptr;   // G⁻¹ (full d-vectors)
  const double* tail_inv = nullptr;  // (G's leading t × t block)⁻¹, t = width mod d, row stride d
  const uint8_t* active = nullptr;   // nonzero: the group takes part in the launch
};

// The span's weights, F32: group g's column c of row r is w[r·ldw + g·group_size + c].
struct WeightView {
  const float* w = nullptr;
  int64_t ldw = 0;
};

// Two sums per (group, chunk): partials[g · chunks + chunk].
struct Sum2 {
  double a;
  double b;
};

// Chunks per group of a reduction: a function of the shape only.
inline int ReduceChunks(int64_t rows, int32_t group_size) {
  const int64_t per_chunk = 16384;
  const int64_t chunks = (rows * group_size + per_chunk - 1) / per_chunk;
  return static_cast<int>(chunks < 1 ? 1 : (chunks > 64 ? 64 : chunks));
}

// partials[g·chunks + k].a = max |w| over the chunk (all groups).
cudaError_t LaunchGroupMaxAbs(const GroupLayout& l, const GroupParams& p, WeightView w, int chunks,
                              Sum2* partials);

// x = w / scale. mean == nullptr: (Σ x, 0); else (Σ (x−m)², Σ (x−m)⁴), m = mean[g].
cudaError_t LaunchGroupMoments(const GroupLayout& l, const GroupParams& p, WeightView w,
                               const double* mean, int chunks, Sum2* partials);

// (Σ v², 0) over each group's elements of a work buffer.
cudaError_t LaunchGroupSumSquares(const GroupLayout& l, const GroupParams& p, const double* v,
                                  int chunks, Sum2* partials);

// y = F_µ(w / scale) for active groups.
cudaError_t LaunchCompand(const GroupLayout& l, const GroupParams& p, WeightView w, double* y);

// Babai codes of y for active groups: code = clamp(⌊G⁻¹y⌋, −2^(b−1), 2^(b−1)−1) + 2^(b−1)
// per d-vector (a row's short last vector with tail_inv); non-finite → 0.
cudaError_t LaunchBabai(const GroupLayout& l, const GroupParams& p, const double* y,
                        uint8_t* codes);

// For active groups, from the codes: z = code − 2^(b−1) + ½ into zd, ŷ = G z
// (short vector: G's leading block) into yhat, and Δ = x − F_µ⁻¹(ŷ) into delta.
cudaError_t LaunchDecodeDelta(const GroupLayout& l, const GroupParams& p, WeightView w,
                              const uint8_t* codes, double* delta, double* yhat, double* zd);

// Loss terms of active groups: partials (Σ r·Δ, Σ ∂/∂µ) with r = Δ H (r == delta
// without a Hessian). With `gradient`, yhat is overwritten by ∂loss/∂ŷ.
cudaError_t LaunchLossTerms(const GroupLayout& l, const GroupParams& p, const double* r,
                            const double* delta, double* yhat, bool gradient, int chunks,
                            Sum2* partials);

// Σ_rows w² per column into energy[g·group_size + c] (all groups).
cudaError_t LaunchColumnEnergy(const GroupLayout& l, const GroupParams& p, WeightView w,
                               double* energy);

// Per-row absmax midrise RTN error at `bits` (SDBA's proxy) into delta,
// all groups.
cudaError_t LaunchRtnDelta(const GroupLayout& l, const GroupParams& p, WeightView w, int bits,
                           double* delta);

// to ← from for the groups whose improved[g] is nonzero (code buffers).
cudaError_t LaunchCopyGroupCodes(const GroupLayout& l, const uint8_t* improved, const uint8_t* from,
                                 uint8_t* to);

}  // namespace glvq::cuda
