#include "worker/cuda/cublas_api.h"

#include <dlfcn.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace glvq::cuda {
namespace {

absl::StatusOr<void*> OpenLibrary() {
  const std::string soname = absl::StrCat("libcublas.so.", CUBLAS_VER_MAJOR);
  std::string errors;
  for (const std::string& name : {soname, std::string(GLVQ_CUDA_LIBRARY_DIR "/") + soname}) {
    if (void* handle = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
    absl::StrAppend(&errors, errors.empty() ? "" : "; ", ::dlerror());
  }
  return absl::UnavailableError(absl::StrCat("cannot load cuBLAS: ", errors));
}

template <typename Fn>
absl::Status Resolve(void* handle, const char* symbol, Fn* fn) {
  *fn = reinterpret_cast<Fn>(::dlsym(handle, symbol));
  if (*fn == nullptr) {
    return absl::UnavailableError(absl::StrCat("cuBLAS has no ", symbol, ": ", ::dlerror()));
  }
  return absl::OkStatus();
}

absl::StatusOr<CublasApi> Load() {
  absl::StatusOr<void*> handle = OpenLibrary();
  if (!handle.ok()) return handle.status();
  CublasApi api;
  for (absl::Status s : {Resolve(*handle, "cublasCreate_v2", &api.create),
                         Resolve(*handle, "cublasDestroy_v2", &api.destroy),
                         Resolve(*handle, "cublasDgemm_v2", &api.dgemm),
                         Resolve(*handle, "cublasGetStatusName", &api.status_name),
                         Resolve(*handle, "cublasGetStatusString", &api.status_string)}) {
    if (!s.ok()) return s;
  }
  return api;
}

}  // namespace

absl::StatusOr<const CublasApi*> Cublas() {
  static const absl::StatusOr<CublasApi>* const api = new absl::StatusOr<CublasApi>(Load());
  if (!api->ok()) return api->status();
  return &**api;
}

}  // namespace glvq::cuda
