// RTN's, GPTQ's and E8P's row work on the device: the CPU reference's functions,
// one thread per (row, group) or per row; consecutive threads take
// consecutive rows of a tile, so their column reads coalesce.
#include "worker/cuda/scalar_kernels.h"

namespace glvq::cuda {
namespace {

constexpr int kThreads = 128;

// Row r of the pass within its tile: the base of its weights (stride kRowTile).
__device__ double* RowBase(double* base, int64_t r, int64_t tile_elements) {
  return base + (r / kRowTile) * tile_elements + r % kRowTile;
}

// Original column c0 + i of a row at sweep position position[c0 + i].
struct SweptColumns {
  const double* row;
  const int64_t* position;
  int64_t c0;
  __device__ double operator()(int64_t i) const {
    const int64_t c = c0 + i;
    return row[(position != nullptr ? position[c] : c) * kRowTile];
  }
};

__global__ void FitGridsKernel(TiledRows rows, const int64_t* position, const double* diag,
                               int bits, bool min_max, bool encode, cpu::ScalarCodesView out) {
  const int64_t pass_rows = rows.tiles * kRowTile;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t groups = (out.cols + out.group_size - 1) / out.group_size;
  if (i >= pass_rows * groups) return;
  const int64_t g = i / pass_rows, r = i % pass_rows;
  const SweptColumns values{RowBase(rows.w, r, rows.n * kRowTile), position, g * out.group_size};
  const int64_t width = out.GroupWidth(g);
  const cpu::ScalarGrid grid =
      cpu::FitScalarGridOf(values, cpu::StridedValues{diag + values.c0, 1}, width, bits, min_max);
  out.grid(g, r) = grid;
  if (!encode) return;
  for (int64_t c = 0; c < width; ++c) out.code(g, r, c) = grid.Encode(values(c));
}

__global__ void GptqBatchKernel(cpu::GptqSweepView sweep, int64_t b0, int64_t b1, TiledRows rows,
                                cpu::ScalarCodesView out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows.tiles * kRowTile) return;
  cpu::GptqSweepRow(sweep, b0, b1, RowBase(rows.w, r, rows.n * kRowTile), kRowTile,
                    RowBase(rows.err, r, cpu::kGptqBatch * kRowTile), kRowTile, r, out);
}

__global__ void E8pBatchKernel(E8pSweep s, int64_t b0, int64_t b1, TiledRows rows,
                               cpu::E8pIndicesView out, double* energy) {
  constexpr int kDim = cpu::kE8pDim;
  const int64_t pass_rows = rows.tiles * kRowTile;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= pass_rows) return;
  double* w = RowBase(rows.w, r, s.n * kRowTile);
  double* feedback = s.u != nullptr ? RowBase(rows.err, r, cpu::kGptqBatch * kRowTile) : nullptr;
  const auto u = [&](int64_t i, int64_t j) { return s.u[i + j * s.n]; };
  for (int64_t c0 = b0; c0 < b1; c0 += kDim) {
    const int k = static_cast<int>(s.n - c0 < kDim ? s.n - c0 : kDim);
    const int64_t g = c0 / out.group_size;
    const double scale = s.scales[g];
    double x[kDim], f[kDim];
    double squares = 0;
    for (int i = 0; i < k; ++i) {
      const double v = w[(c0 + i) * kRowTile];
      x[i] = v / scale;
      squares += v * v;
    }
    if (energy != nullptr) energy[g * pass_rows + r] += squares;
    const uint16_t index = cpu::E8pNearestOf(s.tables, x, k);
    out.at(g, r, (c0 - g * out.group_size) / kDim) = index;
    if (feedback == nullptr) continue;
    // f = (W_B − Ŵ_B) U_BB⁻¹: forward substitution with U_BBᵀ.
    for (int i = 0; i < k; ++i) {
      double acc = w[(c0 + i) * kRowTile] - scale * cpu::E8pCoordinate(s.tables, index, i);
      for (int j = 0; j < i; ++j) acc -= u(c0 + j, c0 + i) * f[j];
      f[i] = acc / u(c0 + i, c0 + i);
      feedback[(c0 - b0 + i) * kRowTile] = f[i];
    }
    for (int64_t c = c0 + k; c < b1; ++c) {
      double move = 0;
      for (int j = 0; j < k; ++j) move += f[j] * u(c0 + j, c);
      w[c * kRowTile] -= move;
    }
  }
}

unsigned BlocksFor(int64_t threads) {
  return static_cast<unsigned>((threads + kThreads - 1) / kThreads);
}

}  // namespace

cudaError_t LaunchFitGrids(const TiledRows& rows, const int64_t* position, const double* diag,
                           int bits, bool min_max, bool encode, const cpu::ScalarCodesView& out,
                           cudaStream_t stream) {
  const int64_t groups = (out.cols + out.group_size - 1) / out.group_size;
  const int64_t threads = rows.tiles * kRowTile * groups;
  if (threads == 0) return cudaSuccess;
  FitGridsKernel<<<BlocksFor(threads), kThreads, 0, stream>>>(rows, position, diag, bits, min_max,
                                                              encode, out);
  return cudaGetLastError();
}

cudaError_t LaunchGptqBatch(const cpu::GptqSweepView& sweep, int64_t b0, int64_t b1,
                            const TiledRows& rows, const cpu::ScalarCodesView& out,
                            cudaStream_t stream) {
  const int64_t threads = rows.tiles * kRowTile;
  if (threads == 0 || b1 <= b0) return cudaSuccess;
  GptqBatchKernel<<<BlocksFor(threads), kThreads, 0, stream>>>(sweep, b0, b1, rows, out);
  return cudaGetLastError();
}

cudaError_t LaunchE8pBatch(const E8pSweep& sweep, int64_t b0, int64_t b1, const TiledRows& rows,
                           const cpu::E8pIndicesView& out, double* energy, cudaStream_t stream) {
  const int64_t threads = rows.tiles * kRowTile;
  if (threads == 0 || b1 <= b0) return cudaSuccess;
  E8pBatchKernel<<<BlocksFor(threads), kThreads, 0, stream>>>(sweep, b0, b1, rows, out, energy);
  return cudaGetLastError();
}

}  // namespace glvq::cuda
