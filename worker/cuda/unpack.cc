#include "worker/cuda/unpack.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/packed/layout.h"
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/kernels.h"

namespace glvq::cuda {
namespace {

// Device allocation owned for one scope.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  absl::Status Allocate(size_t bytes) {
    return CudaStatus(cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes), "cudaMalloc");
  }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

}  // namespace

absl::Status UnpackCodesOnDevice(std::span<const std::byte> packed, int bits,
                                 std::span<uint8_t> codes) {
  if (bits < static_cast<int>(packed::kMinCodeBits) ||
      bits > static_cast<int>(packed::kMaxCodeBits)) {
    return absl::InvalidArgumentError(absl::StrCat("bits must be 1..8, got ", bits));
  }
  const uint64_t expect = (codes.size() * static_cast<uint64_t>(bits) + 7) / 8;
  if (packed.size() != expect) {
    return absl::InvalidArgumentError(absl::StrCat(
        codes.size(), " codes of ", bits, " bits need ", expect, " bytes, got ", packed.size()));
  }
  DeviceBuffer d_packed, d_codes;
  RETURN_IF_ERROR(d_packed.Allocate(packed.size()));
  RETURN_IF_ERROR(d_codes.Allocate(codes.size()));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(d_packed.as<void>(), packed.data(), packed.size(),
                                  cudaMemcpyHostToDevice));
  CUDA_RETURN_IF_ERROR(LaunchUnpackCodes(d_packed.as<uint8_t>(), codes.size(),
                                         static_cast<uint32_t>(bits), d_codes.as<uint8_t>(),
                                         nullptr));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(codes.data(), d_codes.as<void>(), codes.size(),
                                  cudaMemcpyDeviceToHost));
  return absl::OkStatus();
}

}  // namespace glvq::cuda
