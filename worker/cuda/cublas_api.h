// The cuBLAS entry points the CUDA engine uses, resolved with dlopen at
// first use instead of linked.
//
// Why: libcublas needs libcublasLt, whose static TLS block is large. A
// library linked into the executable puts its static TLS on every
// thread's stack, and civetweb (prometheus-cpp's HTTP server, behind
// --metrics-listen) creates its threads with a small fixed stack, so
// pthread_create fails ("Cannot create threads") in any binary that links
// cuBLAS. A library loaded with dlopen gets dynamic TLS instead.
#pragma once

#include <cublas_v2.h>

#include "absl/status/statusor.h"

namespace glvq::cuda {

struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasDgemm_v2) dgemm = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

// The loaded API (libcublas.so.<major of the headers>, found like any
// shared library: RUNPATH, LD_LIBRARY_PATH, ld.so.cache; then the CUDA
// toolkit's library directory this build used). UNAVAILABLE with dlerror's
// reason when the library or a symbol is missing. Thread-safe; loaded
// once, never unloaded.
absl::StatusOr<const CublasApi*> Cublas();

}  // namespace glvq::cuda
