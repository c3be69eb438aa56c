// Launch functions of the row kernels behind RTN, GPTQ and E8P on CUDA
// (worker/cuda/scalar_kernels.cu), callable from host C++ (C++17, no absl:
// this header goes through nvcc). The per-element arithmetic is the CPU
// reference's own code (worker/cpu/scalar_grid_core.h, gptq_row.h), run
// one thread per row or per (row, group); the file is compiled without FMA
// contraction, so a row given the same inputs gives the CPU's bits.
//
// Row tiles. A device holds a pass of whole tiles of kRowTile rows; row r
// of the pass is row r mod kRowTile of tile r / kRowTile. A tile keeps its
// rows' weights column-major in sweep order (element (r, k) at k·kRowTile
// + r, ld kRowTile) and likewise the scaled errors of the current batch
// (kGptqBatch columns), so that every GEMM of the sweep has the same shape
// whatever the pass or device count: results do not depend on the split.
//
// Memory: every pointer is device memory owned by the caller. Functions
// return the launch status (cudaGetLastError); execution errors surface at
// the next synchronising call.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "worker/cpu/e8p_search.h"
#include "worker/cpu/gptq_row.h"

namespace glvq::cuda {

inline constexpr int64_t kRowTile = 1024;

// The pass's tiled buffers: weights [tiles][n][kRowTile], errors
// [tiles][kGptqBatch][kRowTile] (GPTQ only), rows = tiles · kRowTile.
struct TiledRows {
  double* w = nullptr;
  double* err = nullptr;
  int64_t tiles = 0;
  int64_t n = 0;  // columns
};

// Fits the grid of every (row, group) of the pass from its weights, the
// values of original column c read at sweep position position[c] (null:
// c), with importance diag[c] (the FitScalarGridOf of the CPU reference);
// with `encode`, also writes every code (RTN). Grids and codes go to `out`
// (out.rows = the pass's rows).
cudaError_t LaunchFitGrids(const TiledRows& rows, const int64_t* position, const double* diag,
                           int bits, bool min_max, bool encode, const cpu::ScalarCodesView& out,
                           cudaStream_t stream);

// Every row of the pass through lazy batch [b0, b1) (cpu::GptqSweepRow):
// codes (and grids, unless static) into `out`, the batch's scaled errors
// into rows.err (column k − b0), the batch's later columns updated in
// rows.w. `sweep`'s pointers are device memory.
cudaError_t LaunchGptqBatch(const cpu::GptqSweepView& sweep, int64_t b0, int64_t b1,
                            const TiledRows& rows, const cpu::ScalarCodesView& out,
                            cudaStream_t stream);

// What every row's E8P sweep reads (device memory).
struct E8pSweep {
  cpu::E8pTables tables;
  const float* scales = nullptr;  // [groups]: the weights are coded as w / scale
  const double* u = nullptr;      // n × n chol(H⁻¹) upper, column-major; null: no feedback
  int64_t n = 0;
};

// Every row of the pass through lazy batch [b0, b1) of E8P's BlockLDLQ
// (cpu::SweepBlockLdlq with the E8P block coder): each block of 8 columns
// (fewer at the matrix's end) rounded to its nearest codeword
// (cpu::E8pNearestOf), its error scaled by U_BB⁻ᵀ into rows.err and fed to
// the batch's later columns. With `energy` (groups × pass rows, row
// fastest), each (group, row) adds the squares of the weights its blocks
// were rounded against (the trial sweep's drifted weights).
cudaError_t LaunchE8pBatch(const E8pSweep& sweep, int64_t b0, int64_t b1, const TiledRows& rows,
                           const cpu::E8pIndicesView& out, double* energy, cudaStream_t stream);

}  // namespace glvq::cuda
