// DeviceWorkspace: the figures SDBA needs (cpu::AllocateBitsWith).
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/device_workspace.h"

namespace glvq::cuda {

absl::StatusOr<std::vector<double>> DeviceWorkspace::ColumnEnergies() {
  RETURN_IF_ERROR(Activate());
  CUDA_RETURN_IF_ERROR(LaunchColumnEnergy(Layout(), Params(), view_, gram_.get()));
  const size_t gs = static_cast<size_t>(shape_.group_size);
  std::vector<double> host(shape_.widths.size() * gs), out;
  RETURN_IF_ERROR(gram_.Download(host));
  for (size_t g = 0; g < shape_.widths.size(); ++g) {
    out.insert(out.end(), host.begin() + static_cast<int64_t>(g * gs),
               host.begin() + static_cast<int64_t>(g * gs) + shape_.widths[g]);
  }
  return out;
}

absl::StatusOr<std::vector<std::array<double, 3>>> DeviceWorkspace::RtnProxies(int n) {
  RETURN_IF_ERROR(Activate());
  GroupParams all = Params();
  all.active = nullptr;
  std::vector<std::array<double, 3>> out(shape_.widths.size());
  for (int k = 0; k < 3; ++k) {
    CUDA_RETURN_IF_ERROR(LaunchRtnDelta(Layout(), all, view_, n - 1 + k, delta_.get()));
    const double* r = delta_.get();
    if (shape_.hessian) {
      RETURN_IF_ERROR(MultiplyHessian(/*all_groups=*/true));
      r = r_.get();
    }
    CUDA_RETURN_IF_ERROR(LaunchLossTerms(Layout(), all, r, delta_.get(), yhat_.get(),
                                         /*gradient=*/false, Chunks(), partials_.get()));
    ASSIGN_OR_RETURN(const std::vector<Sum2> sums, ReducePartials(false));
    for (size_t g = 0; g < sums.size(); ++g) out[g][static_cast<size_t>(k)] = sums[g].a;
  }
  return out;
}

}  // namespace glvq::cuda
