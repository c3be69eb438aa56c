// GLVQ_HOST_DEVICE marks a function that host C++ and CUDA device code
// share (ggml-style: one implementation, the CPU's being the oracle).
// Such headers compile as C++17 under nvcc: no absl, no Eigen, no std::span,
// only <math.h>-level library calls.
#pragma once

#if defined(__CUDACC__)
#define GLVQ_HOST_DEVICE __host__ __device__
#else
#define GLVQ_HOST_DEVICE
#endif
