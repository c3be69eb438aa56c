#include "worker/service/engine_backend.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"

#if GLVQ_WITH_CUDA
#include "worker/cuda/bandwidth.h"
#include "worker/cuda/cuda_quantizer.h"
#include "worker/cuda/device_info.h"
#endif

namespace glvq::worker {

std::optional<BackendRequest> ParseBackendRequest(std::string_view name) {
  if (name == "auto") return BackendRequest::kAuto;
  if (name == "cpu") return BackendRequest::kCpu;
  if (name == "cuda") return BackendRequest::kCuda;
  return std::nullopt;
}

std::string EngineBackend::Label() const {
  if (backend != v1::BACKEND_CUDA) return "cpu";
  std::vector<uint32_t> ordinals;
  for (const v1::GpuInfo& gpu : gpus) ordinals.push_back(gpu.index());
  return absl::StrCat("cuda:", absl::StrJoin(ordinals, ","));
}

absl::StatusOr<std::vector<v1::GpuInfo>> DiscoverGpus() {
#if GLVQ_WITH_CUDA
  ASSIGN_OR_RETURN(const std::vector<cuda::DeviceInfo> devices, cuda::DescribeDevices());
  std::vector<v1::GpuInfo> gpus;
  for (const cuda::DeviceInfo& d : devices) {
    v1::GpuInfo& gpu = gpus.emplace_back();
    gpu.set_index(static_cast<uint32_t>(d.index));
    gpu.set_name(d.name);
    gpu.set_memory_bytes(d.total_bytes);
    gpu.set_compute_capability(d.compute_capability);
    gpu.set_free_bytes(d.free_bytes);
  }
  return gpus;
#else
  return absl::UnavailableError("this glvq-worker was built without CUDA");
#endif
}

absl::StatusOr<EngineBackend> ResolveBackend(
    BackendRequest request, const absl::StatusOr<std::vector<v1::GpuInfo>>& gpus) {
  EngineBackend backend;
  if (request == BackendRequest::kCpu) return backend;
  if (!gpus.ok() || gpus->empty()) {
    const std::string reason =
        gpus.ok() ? std::string("no CUDA device is visible") : std::string(gpus.status().message());
    if (request == BackendRequest::kCuda) {
      return absl::FailedPreconditionError(
          absl::StrCat("--backend cuda, but no usable GPU: ", reason));
    }
    backend.fallback_reason = reason;
    return backend;
  }
  backend.backend = v1::BACKEND_CUDA;
  backend.gpus = *gpus;
  return backend;
}

absl::StatusOr<EngineBackend> ResolveLocalBackend(BackendRequest request) {
  if (request == BackendRequest::kCpu) return EngineBackend{};
  return ResolveBackend(request, DiscoverGpus());
}

BackendRequest RequestFor(v1::Backend backend) {
  switch (backend) {
    case v1::BACKEND_CPU:
      return BackendRequest::kCpu;
    case v1::BACKEND_CUDA:
      return BackendRequest::kCuda;
    default:
      return BackendRequest::kAuto;
  }
}

uint64_t GpuMemoryInUse(const EngineBackend& backend) {
  uint64_t used = 0;
#if GLVQ_WITH_CUDA
  if (backend.backend != v1::BACKEND_CUDA) return 0;
  for (const v1::GpuInfo& gpu : backend.gpus) {
    const absl::StatusOr<cuda::DeviceMemory> m = cuda::MemoryOf(static_cast<int>(gpu.index()));
    if (m.ok()) used += m->total_bytes - m->free_bytes;
  }
#else
  (void)backend;
#endif
  return used;
}

absl::StatusOr<double> DeviceCopyBandwidth(const EngineBackend& backend) {
#if GLVQ_WITH_CUDA
  if (backend.backend == v1::BACKEND_CUDA && !backend.gpus.empty()) {
    return cuda::MeasureCopyBandwidth(static_cast<int>(backend.gpus.front().index()));
  }
#else
  (void)backend;
#endif
  return absl::UnimplementedError("the CPU backend has no device memory to measure");
}

absl::StatusOr<std::unique_ptr<engine::Quantizer>> MakeBackendQuantizer(
    const EngineBackend& backend, const quant::QuantizerConfig& config, std::string* label) {
#if GLVQ_WITH_CUDA
  if (backend.backend == v1::BACKEND_CUDA && cuda::CudaSupports(config)) {
    std::vector<int> devices;
    for (const v1::GpuInfo& gpu : backend.gpus) devices.push_back(static_cast<int>(gpu.index()));
    *label = backend.Label();
    return cuda::MakeCudaQuantizer(config, devices);
  }
#endif
  (void)backend;
  *label = "cpu";
  return engine::MakeQuantizer(config);
}

}  // namespace glvq::worker
