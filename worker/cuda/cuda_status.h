// CUDA errors as absl::Status values (NCCL-style strict checking: every call
// goes through CUDA_RETURN_IF_ERROR).
#pragma once

#include <cuda_runtime_api.h>

#include "absl/status/status.h"

namespace glvq::cuda {

// OK for cudaSuccess; RESOURCE_EXHAUSTED for out-of-memory; UNAVAILABLE when
// no usable device or driver exists; INTERNAL otherwise. `what` names the call.
absl::Status CudaStatus(cudaError_t err, const char* what);

}  // namespace glvq::cuda

#define CUDA_RETURN_IF_ERROR(call) \
  RETURN_IF_ERROR(::glvq::cuda::CudaStatus((call), #call))
