#include "worker/cuda/cublas_status.h"

#include "absl/strings/str_cat.h"
#include "worker/cuda/cublas_api.h"

namespace glvq::cuda {

absl::Status CublasStatus(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  // A status exists only once cuBLAS was loaded, so Cublas() is OK here.
  absl::StatusOr<const CublasApi*> api = Cublas();
  const std::string msg =
      api.ok() ? absl::StrCat(what, ": ", (*api)->status_name(status), ": ",
                              (*api)->status_string(status))
               : absl::StrCat(what, ": cuBLAS status ", static_cast<int>(status));
  switch (status) {
    case CUBLAS_STATUS_ALLOC_FAILED:
      return absl::ResourceExhaustedError(msg);
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace glvq::cuda
