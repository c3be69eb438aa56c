// cuBLAS errors as absl::Status values, like cuda_status.h for the runtime.
#pragma once

#include <cublas_v2.h>

#include "absl/status/status.h"
#include "common/base/status_macros.h"

namespace glvq::cuda {

// OK for CUBLAS_STATUS_SUCCESS; RESOURCE_EXHAUSTED when cuBLAS cannot
// allocate; UNAVAILABLE when it cannot initialise (no usable device);
// INTERNAL otherwise. `what` names the call.
absl::Status CublasStatus(cublasStatus_t status, const char* what);

}  // namespace glvq::cuda

#define CUBLAS_RETURN_IF_ERROR(call) RETURN_IF_ERROR(::glvq::cuda::CublasStatus((call), #call))
