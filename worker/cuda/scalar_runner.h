// RTN and GPTQ on CUDA devices (ALGORITHMS.md §3.1–3.2): the hot loops of
// the scalar baselines. Rows never interact in either method, so a
// tensor's rows are cut into tiles of kRowTile (scalar_kernels.h), tiles
// are shared among the devices in contiguous runs, and each device takes
// its run in passes of as many tiles as its free memory holds beside what
// every pass needs (GPTQ: chol(H⁻¹), n × n doubles). An allocation that
// fails halves the pass and is redone.
//
// Per pass: the tiles' weights go up in sweep order as doubles; RTN fits
// and encodes every (row, group) in one launch; GPTQ fits static grids
// (act order) the same way, then per lazy batch runs one thread per row
// through the batch (cpu::GptqSweepRow) and moves the batch's errors onto
// the later columns with one cuBLAS Dgemm per tile. Codes and grids come
// back to the host into the CPU's ScalarQuantization, which packs them.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "worker/cpu/gptq_sweep.h"
#include "worker/cpu/scalar_grid.h"
#include "worker/engine/quantizer.h"

namespace glvq::cuda {

struct ScalarJob {
  engine::MatrixView w;  // rows × cols F32, row-major
  int bits = 2;          // 1..8
  bool min_max = false;  // RtnVariant::kMinMax, else clip search
  // GPTQ's sweep (host memory, outlives the call); null for RTN.
  const cpu::GptqSweep* sweep = nullptr;
  // RTN's importance per column (diag H, or ones); GPTQ uses sweep->diag.
  std::span<const double> diag;
};

// Runs `job` on `devices` (ordinals, non-empty, distinct) into *q (sized
// for w, group size chosen by its constructor). max_tiles > 0 caps the
// tiles of a pass (the GLVQ_CUDA_MAX_BATCH_GROUPS test hook); 0 lets memory
// decide. The result does not depend on the devices, passes or cap.
// RESOURCE_EXHAUSTED when a device cannot hold one tile beside the pass's
// fixed inputs; CUDA and cuBLAS errors otherwise.
absl::Status RunScalarJob(const ScalarJob& job, std::span<const int> devices, int64_t max_tiles,
                          cpu::ScalarQuantization* q);

}  // namespace glvq::cuda
