#include "worker/cuda/scalar_quantizer.h"

#include <optional>

#include "common/base/status_macros.h"
#include "worker/cpu/gptq_sweep.h"
#include "worker/cpu/scalar_grid.h"
#include "worker/cuda/scalar_runner.h"
#include "worker/engine/problem.h"

namespace glvq::cuda {
namespace {

// Grids and codes come from the devices; packing, the side information
// and the quality figures are the CPU reference's (AssembleRtnTensor and
// the Quantizer base class), so the tensor is laid out exactly as the
// CPU engine's.
class CudaScalarQuantizer final : public engine::Quantizer {
 public:
  CudaScalarQuantizer(const engine::QuantizerConfig& c, std::vector<int> devices, int64_t max_tiles)
      : Quantizer(c), devices_(std::move(devices)), max_tiles_(max_tiles) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, engine::QuantizeResult* result) const override {
    const engine::QuantizerConfig& c = config();
    const int bits = static_cast<int>(c.bits);
    cpu::ScalarQuantization q(p.w.rows, p.w.cols, c.group_size);
    ScalarJob job{p.w, bits, c.rtn_variant == engine::RtnVariant::kMinMax, nullptr, {}};
    std::optional<cpu::GptqSweep> sweep;
    std::vector<double> diag;
    if (c.method == engine::Method::kGptq) {
      sweep = cpu::PrepareGptqSweep(p.hessian, p.w.cols, c.act_order);
      job.sweep = &*sweep;
    } else {
      diag.resize(static_cast<size_t>(p.w.cols));
      for (int64_t col = 0; col < p.w.cols; ++col) diag[col] = p.hessian.Diagonal(col);
      job.diag = diag;
    }
    RETURN_IF_ERROR(RunScalarJob(job, devices_, max_tiles_, &q));
    return cpu::AssembleRtnTensor(p, c, bits, q, result);
  }

 private:
  std::vector<int> devices_;
  int64_t max_tiles_;  // 0: passes as large as memory allows
};

}  // namespace

std::unique_ptr<engine::Quantizer> NewCudaScalarQuantizer(const engine::QuantizerConfig& config,
                                                          std::vector<int> devices,
                                                          int64_t max_tiles) {
  return std::make_unique<CudaScalarQuantizer>(config, std::move(devices), max_tiles);
}

}  // namespace glvq::cuda
