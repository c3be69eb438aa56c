// Device memory owned by a host object (RAII), sized in elements of T.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <limits>
#include <span>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"

namespace glvq::cuda {

template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  ~DeviceArray() { Reset(); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept { *this = std::move(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      Reset();
      ptr_ = o.ptr_;
      size_ = o.size_;
      device_ = o.device_;
      o.ptr_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }

  // `n` elements on the current device (replacing any previous memory).
  // RESOURCE_EXHAUSTED when the device cannot hold them; the runtime's
  // last-error state is cleared so that later launches do not report it.
  absl::Status Allocate(size_t n) {
    Reset();
    if (n > std::numeric_limits<size_t>::max() / sizeof(T)) {
      return absl::ResourceExhaustedError(absl::StrCat("device array of ", n, " elements"));
    }
    CUDA_RETURN_IF_ERROR(cudaGetDevice(&device_));
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, n == 0 ? 1 : n * sizeof(T));
    if (err != cudaSuccess) {
      cudaGetLastError();
      return CudaStatus(err, absl::StrCat("cudaMalloc(", n * sizeof(T), " bytes)").c_str());
    }
    ptr_ = static_cast<T*>(p);
    size_ = n;
    return absl::OkStatus();
  }

  // Copies host.size() ≤ size() elements to the front of the array.
  absl::Status Upload(std::span<const T> host) {
    if (host.size() > size_) return absl::InternalError("DeviceArray::Upload: too many elements");
    if (host.empty()) return absl::OkStatus();
    CUDA_RETURN_IF_ERROR(
        cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return absl::OkStatus();
  }

  // Copies the first host.size() ≤ size() elements to `host`.
  absl::Status Download(std::span<T> host) const {
    if (host.size() > size_) return absl::InternalError("DeviceArray::Download: too many elements");
    if (host.empty()) return absl::OkStatus();
    CUDA_RETURN_IF_ERROR(
        cudaMemcpy(host.data(), ptr_, host.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return absl::OkStatus();
  }

  absl::Status Zero() {
    CUDA_RETURN_IF_ERROR(cudaMemset(ptr_, 0, size_ * sizeof(T)));
    return absl::OkStatus();
  }

  T* get() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  // Frees on the device that allocated, leaving the thread's current device as it was.
  void Reset() {
    if (ptr_ == nullptr) return;
    int current = device_;
    cudaGetDevice(&current);
    if (current != device_) cudaSetDevice(device_);
    cudaFree(ptr_);
    if (current != device_) cudaSetDevice(current);
    ptr_ = nullptr;
    size_ = 0;
  }

  T* ptr_ = nullptr;
  size_t size_ = 0;
  int device_ = 0;
};

}  // namespace glvq::cuda
