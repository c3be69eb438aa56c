// One row's step of the GPTQ sweep (docs/algorithms.md §3.2), shared by the CPU
// reference (gptq_quantizer.cc) and the CUDA kernel (worker/cuda/
// scalar_kernels.cu): rows never interact in GPTQ, so a row's sweep through
// one lazy batch of columns is the unit both engines run, the CPU over
// blocks of rows, the GPU one thread per row. The product that moves the
// batch's errors onto the later columns is each engine's GEMM.
// Device-safe C++17 (common/base/host_device.h).
#pragma once

#include <stdint.h>

#include "common/base/host_device.h"
#include "worker/cpu/scalar_grid_core.h"

namespace glvq::cpu {

// Columns per lazy batch: their errors reach the columns after the batch
// in one matrix product (same result as per-column updates, up to
// rounding, at GEMM speed).
inline constexpr int64_t kGptqBatch = 128;

// What every row's sweep reads. Pointers are host or device memory, owned
// by the caller.
struct GptqSweepView {
  const double* u = nullptr;       // n × n chol(H⁻¹) upper in sweep order,
                                   // column-major: U(k, j) at k + j·n
  const int64_t* order = nullptr;  // [n]: position k quantizes column order[k]
  const double* diag = nullptr;    // [n]: diag H of the original columns
  int64_t n = 0;                   // columns
  int bits = 2;                    // 1..8
  bool min_max = false;            // RtnVariant::kMinMax, else clip search
  // Grids fitted upfront on the original weights (act order); otherwise a
  // group's grid is fitted when the sweep reaches its first column.
  bool static_groups = false;
};

// End of the lazy batch starting at b0 (< n). A group whose grid is fitted
// inside a batch must lie wholly in it: its later columns would otherwise
// miss the updates still pending from the batch's earlier columns.
GLVQ_HOST_DEVICE inline int64_t GptqBatchEnd(int64_t b0, int64_t n, int64_t group_size,
                                             bool static_groups) {
  const int64_t b1 = b0 + kGptqBatch < n ? b0 + kGptqBatch : n;
  if (static_groups) return b1;
  for (int64_t s = (b0 / group_size + 1) * group_size; s < b1; s += group_size) {
    const int64_t group_end = s + group_size < n ? s + group_size : n;
    if (group_end > b1) return s;
  }
  return b1;
}

// Row r's sweep through batch [b0, b1): w[k·w_stride] is the row's weight
// at sweep position k, updated in place with the feedback of the batch's
// earlier columns; err[(k − b0)·err_stride] receives the scaled error
// (w_k − ŵ_k) / U(k, k) that the caller's GEMM moves onto columns ≥ b1.
// Codes (and grids, unless static) go to `out` at row r.
GLVQ_HOST_DEVICE inline void GptqSweepRow(const GptqSweepView& s, int64_t b0, int64_t b1, double* w,
                                          int64_t w_stride, double* err, int64_t err_stride,
                                          int64_t r, const ScalarCodesView& out) {
  const int64_t gs = out.group_size;
  for (int64_t k = b0; k < b1; ++k) {
    const int64_t col = s.order[k], g = col / gs;
    if (!s.static_groups && col == g * gs) {
      out.grid(g, r) =
          FitScalarGridOf(StridedValues{w + k * w_stride, w_stride}, StridedValues{s.diag + col, 1},
                          out.GroupWidth(g), s.bits, s.min_max);
    }
    const ScalarGrid grid = out.grid(g, r);
    const double x = w[k * w_stride];
    const uint8_t code = grid.Encode(x);
    out.code(g, r, col - g * gs) = code;
    const double e = (x - grid.Decode(code)) / s.u[k + k * s.n];
    err[(k - b0) * err_stride] = e;
    for (int64_t j = k + 1; j < b1; ++j) w[j * w_stride] -= e * s.u[k + j * s.n];
  }
}

}  // namespace glvq::cpu
