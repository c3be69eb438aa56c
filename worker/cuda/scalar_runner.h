// RTN, GPTQ and E8P on CUDA devices (docs/algorithms.md §3.1–3.3): the hot
// loops of the baselines. Rows never interact in either method, so a
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
// E8P runs like GPTQ with blocks of 8 columns rounded to codewords
// (scalar_kernels.h) and indices instead of grids and codes.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "worker/cpu/e8p_search.h"
#include "worker/cpu/gptq_sweep.h"
#include "worker/cpu/scalar_grid.h"
#include "worker/engine/quantizer.h"

namespace glvq::cuda {

// E8P's part of a job: one BlockLDLQ sweep (feedback through sweep->u when
// the job has a sweep, whose order must be the identity).
struct E8pPass {
  std::span<const float> scales;  // [groups]
  bool record_energy = false;     // the trial sweep: fill ScalarOutputs::energy
};

struct ScalarJob {
  engine::MatrixView w;  // rows × cols F32, row-major
  int64_t group_size = 128;
  int bits = 2;          // 1..8
  bool min_max = false;  // RtnVariant::kMinMax, else clip search
  // GPTQ's sweep, or E8P's feedback (host memory, outlives the call);
  // null for RTN and E8P without a Hessian.
  const cpu::GptqSweep* sweep = nullptr;
  // RTN's importance per column (diag H, or ones); GPTQ uses sweep->diag.
  std::span<const double> diag;
  const E8pPass* e8p = nullptr;  // set: the job is E8P's
};

// Where results go (host memory sized for the whole tensor).
struct ScalarOutputs {
  cpu::ScalarQuantization* q = nullptr;  // RTN and GPTQ
  cpu::E8pIndicesView e8p;               // E8P's indices
  double* energy = nullptr;              // E8P trial: [groups][rows], row fastest
};

// Runs `job` on `devices` (ordinals, non-empty, distinct) into *out.
// max_tiles > 0 caps the tiles of a pass (the GLVQ_CUDA_MAX_BATCH_GROUPS
// test hook); 0 lets memory decide. The result does not depend on the
// devices, passes or cap. RESOURCE_EXHAUSTED when a device cannot hold one
// tile beside the pass's fixed inputs; CUDA and cuBLAS errors otherwise.
absl::Status RunScalarJob(const ScalarJob& job, std::span<const int> devices, int64_t max_tiles,
                          const ScalarOutputs& out);

}  // namespace glvq::cuda
