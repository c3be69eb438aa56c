// Launch functions of the CUDA kernels, callable from host C++. Pointers
// prefixed d_ are device memory owned by the caller. Every function returns
// the launch status (cudaGetLastError after the launch); execution errors
// surface at the next synchronising call.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace glvq::cuda {

// Unpacks `count` codes of `bits` bits (packed format v1, LSB-first) from
// d_packed (ceil(count*bits/8) bytes) into d_codes (count bytes).
cudaError_t LaunchUnpackCodes(const uint8_t* d_packed, uint64_t count, uint32_t bits,
                              uint8_t* d_codes, cudaStream_t stream);

}  // namespace glvq::cuda
