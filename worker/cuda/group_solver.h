// GLVQ learning on a GPU for every column group of a DeviceWorkspace at
// once: the loop of worker/cpu/glvq_group.cc (scale and µ₀, G₀, alternating
// Babai rounding and closed-form G, Adam refinement of G and log µ,
// re-rounding, keep-best), step for step, with the sums over rows on the
// device and the d × d algebra on the host (worker/cpu/glvq_generator.h,
// the same functions the CPU reference calls). Not ported: exact search.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/cuda/device_workspace.h"
#include "common/quant/config.h"

namespace glvq::cuda {

struct SpanProblem {
  std::vector<int32_t> bits;  // [groups] of the workspace, 1..8
  // [groups] damped Hessian blocks (width × width), or empty for H = I;
  // the same blocks must be on the device (DeviceWorkspace::UploadHessian).
  std::span<const Eigen::MatrixXd> hessian;
  quant::GlvqOptions options;
  int threads = 1;  // host threads for the per-group algebra (0 = all cores)
};

// One group's learned side information, as the packed format stores it.
struct SpanGroupResult {
  float scale = 1.0f;
  float mu = 0.0f;
  Eigen::MatrixXd g;  // d × d, F32-representable
  int iterations = 0;
};

// Learns every group; the best codes stay in the workspace
// (DeviceWorkspace::PackBest). Errors are the workspace's (CUDA, cuBLAS).
absl::StatusOr<std::vector<SpanGroupResult>> SolveSpan(DeviceWorkspace& ws,
                                                       const SpanProblem& problem);

}  // namespace glvq::cuda
