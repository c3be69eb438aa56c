// The CUDA engine behind engine::Quantizer (docs/engine.md, "CUDA engine").
//
// Ported: method glvq — the CPU reference's learning loop step for step
// (worker/cuda/group_solver.h), with or without a Hessian, with SDBA
// (salience and RTN proxies on the device, the allocation itself shared
// with the CPU), with RHT (applied on the host by the Quantizer base class,
// as for the CPU), any d in 2..32 and any group size. The groups of a
// batch are learned in the same kernel launches; a task's groups are split
// over the given GPUs (worker/cuda/multi_device.h, NCCL when built with it)
// and each GPU's share into batches that fit its memory.
//
// Ported too: the baselines rtn, gptq and e8p (their hot loops,
// worker/cuda/scalar_runner.h): rows split into tiles over the GPUs, the
// CPU reference's own row code (grids, the GPTQ row sweep, the E8P
// nearest-codeword search) in the kernels, cuBLAS for the lazy-batch
// feedback products; scales, packing and side information by the CPU's
// code.
//
// Not ported — MakeCudaQuantizer answers UNIMPLEMENTED, and CudaSupports
// says false so that a worker runs such a configuration on the CPU engine
// (worker/service/engine_backend.h): method pvq; glvq with exact_search
// (sphere decoding); glvq with ldlq (cross-group feedback); glvq with a µ
// grid (mu_grid > 0, the default; the CUDA group solver starts from the
// paper's kurtosis rule only); glvq with per-row gains (row_gain).
//
// Results agree with the CPU reference within rounding, not bit for bit:
// GLVQ's sums over rows and GPTQ's and E8P's feedback products run in
// another order (tests/gpu/cuda_glvq_test.cc and cuda_scalar_test.cc
// bound the difference); RTN, and GPTQ and E8P without a Hessian, are bit
// for bit. The packed output and the measured quality go
// through the same code as the CPU's (the Quantizer base class decodes
// with DequantizeRef), and a given GPU model gives the same bytes for any
// number of GPUs, split, batch size or thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/quant/config.h"
#include "worker/engine/quantizer.h"

namespace glvq::cuda {

// True when the CUDA engine implements `config` (see above).
bool CudaSupports(const quant::QuantizerConfig& config);

// A quantizer on the CUDA devices `devices` (ordinals; empty: every
// visible device), whose GPUs share each call's column groups. Each GPU
// takes its groups in batches as large as its free memory allows
// (worker/cuda/batch_runner.h); max_batch_groups > 0 caps them, a test
// hook; 0 reads the cap from GLVQ_CUDA_MAX_BATCH_GROUPS (unset: no cap).
// For rtn, gptq and e8p the cap counts row tiles of a pass instead of groups.
// INVALID_ARGUMENT for an invalid config, cap or environment value, or an
// ordinal that is not visible; UNAVAILABLE without a usable device or
// driver; UNIMPLEMENTED for what is not ported. Quantize() fails with
// RESOURCE_EXHAUSTED only when a single column group does not fit a GPU's
// free memory, never by crashing.
absl::StatusOr<std::unique_ptr<engine::Quantizer>> MakeCudaQuantizer(
    const quant::QuantizerConfig& config, std::vector<int> devices = {},
    int64_t max_batch_groups = 0);

}  // namespace glvq::cuda
