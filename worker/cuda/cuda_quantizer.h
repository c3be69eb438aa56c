// The CUDA engine behind engine::Quantizer (docs/engine.md, "CUDA engine").
//
// Ported: method glvq — the CPU reference's learning loop step for step
// (worker/cuda/group_solver.h), with or without a Hessian, with SDBA
// (salience and RTN proxies on the device, the allocation itself shared
// with the CPU), with RHT (applied on the host by the Quantizer base class,
// as for the CPU), any d in 2..32 and any group size. Every group of a
// task is learned in the same kernel launches; a task's groups are split
// over the given GPUs (worker/cuda/multi_device.h, NCCL when built with it).
//
// Not ported — MakeCudaQuantizer answers UNIMPLEMENTED, and CudaSupports
// says false so that a worker runs such a configuration on the CPU engine
// (worker/service/engine_backend.h): methods rtn, gptq, e8p, pvq; glvq with
// exact_search (sphere decoding); glvq with ldlq (cross-group feedback).
//
// Results agree with the CPU reference within rounding, not bit for bit:
// the sums over rows run in another order (tests/gpu/cuda_glvq_test.cc
// bounds the difference). The packed output and the measured quality go
// through the same code as the CPU's (the Quantizer base class decodes
// with DequantizeRef), and a given GPU model gives the same bytes for any
// number of GPUs, split or thread count.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/engine/config.h"
#include "worker/engine/quantizer.h"

namespace glvq::cuda {

// True when the CUDA engine implements `config` (see above).
bool CudaSupports(const engine::QuantizerConfig& config);

// A quantizer on the CUDA devices `devices` (ordinals; empty: every
// visible device), whose GPUs share each call's column groups.
// INVALID_ARGUMENT for an invalid config or an ordinal that is not
// visible; UNAVAILABLE without a usable device or driver; UNIMPLEMENTED
// for what is not ported. Quantize() then fails with RESOURCE_EXHAUSTED
// when a GPU cannot hold its share of the task, never by crashing.
absl::StatusOr<std::unique_ptr<engine::Quantizer>> MakeCudaQuantizer(
    const engine::QuantizerConfig& config, std::vector<int> devices = {});

}  // namespace glvq::cuda
