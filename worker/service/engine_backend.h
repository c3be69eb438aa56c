// Which engine a worker runs tasks on (glvq-worker --backend), decided once
// at start: `auto` takes CUDA when this build has it and a usable GPU is
// visible, else the CPU reference engine (the fallback is logged with its
// reason); `cuda` refuses to start without a usable GPU; `cpu` never
// touches the GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "glvq/v1/job.pb.h"
#include "glvq/v1/worker.pb.h"
#include "worker/engine/quantizer.h"

namespace glvq::worker {

enum class BackendRequest { kAuto, kCpu, kCuda };

// "auto", "cpu", "cuda"; nullopt otherwise.
std::optional<BackendRequest> ParseBackendRequest(std::string_view name);

struct EngineBackend {
  v1::Backend backend = v1::BACKEND_CPU;  // BACKEND_CPU or BACKEND_CUDA
  std::vector<v1::GpuInfo> gpus;          // the devices a CUDA backend drives
  std::string fallback_reason;            // auto → cpu: why no GPU was taken
  // "cpu", or "cuda:<i>[,<j>...]" (the devices): results name it
  // (TaskResultHeader.backend).
  std::string Label() const;
};

// What this machine offers: its usable GPUs, or UNAVAILABLE with the
// reason (always UNAVAILABLE in a build without CUDA).
absl::StatusOr<std::vector<v1::GpuInfo>> DiscoverGpus();

// The backend for `request` given `gpus` (DiscoverGpus's answer; split out
// so tests can exercise every branch on any machine). `cuda` without GPUs
// is FAILED_PRECONDITION naming the reason.
absl::StatusOr<EngineBackend> ResolveBackend(BackendRequest request,
                                             const absl::StatusOr<std::vector<v1::GpuInfo>>& gpus);

// ResolveBackend on this machine (discovers GPUs unless `request` is cpu).
absl::StatusOr<EngineBackend> ResolveLocalBackend(BackendRequest request);

// A job's spec.workers.backend as a request (UNSPECIFIED is auto).
BackendRequest RequestFor(v1::Backend backend);

// Device memory in use on the backend's GPUs now, summed (total − free as
// the driver reports it: other processes on the same GPUs count too); 0 for
// the CPU backend, and a GPU whose query fails adds nothing. Called at every
// metrics scrape: it asks only for memory, not the devices' properties.
uint64_t GpuMemoryInUse(const EngineBackend& backend);

// The backend's memory roofline in GB/s (bytes read + written per second):
// device-to-device copies on its first GPU (worker/cuda/bandwidth.h), or
// UNIMPLEMENTED for the CPU backend, whose benchmarks measure host copies.
absl::StatusOr<double> DeviceCopyBandwidth(const EngineBackend& backend);

// The quantizer a task runs on `backend`. CUDA covers what the CUDA engine
// implements (worker/cuda/cuda_quantizer.h); any other configuration runs on
// the CPU engine, and `*label` says which one was taken.
absl::StatusOr<std::unique_ptr<engine::Quantizer>> MakeBackendQuantizer(
    const EngineBackend& backend, const quant::QuantizerConfig& config, std::string* label);

}  // namespace glvq::worker
