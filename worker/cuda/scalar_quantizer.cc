#include "worker/cuda/scalar_quantizer.h"

#include <optional>

#include "common/base/status_macros.h"
#include "worker/cpu/e8p_quantizer.h"
#include "worker/cpu/gptq_sweep.h"
#include "worker/cpu/scalar_grid.h"
#include "worker/cuda/scalar_runner.h"
#include "worker/engine/problem.h"
#include "worker/engine/rht.h"

namespace glvq::cuda {
namespace {

using Eigen::MatrixXd;

// Grids, codes and indices come from the devices; scales, packing, the
// side information and the quality figures are the CPU reference's code
// (AssembleRtnTensor, AssembleE8pTensor, the Quantizer base class), so the
// tensor is laid out exactly as the CPU engine's.
class CudaScalarQuantizer final : public engine::Quantizer {
 public:
  CudaScalarQuantizer(const quant::QuantizerConfig& c, std::vector<int> devices, int64_t max_tiles)
      // E8P always rotates (cpu/e8p_quantizer.h).
      : Quantizer(c.method == quant::Method::kE8p ? engine::WithRht(c) : c),
        devices_(std::move(devices)),
        max_tiles_(max_tiles) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, quant::QuantizeResult* result) const override {
    return config().method == quant::Method::kE8p ? QuantizeE8p(p, result)
                                                   : QuantizeScalar(p, result);
  }

 private:
  absl::Status QuantizeScalar(const Problem& p, quant::QuantizeResult* result) const {
    const quant::QuantizerConfig& c = config();
    const int bits = static_cast<int>(c.bits);
    cpu::ScalarQuantization q(p.w.rows, p.w.cols, c.group_size);
    ScalarJob job;
    job.w = p.w;
    job.group_size = c.group_size;
    job.bits = bits;
    job.min_max = c.rtn_variant == quant::RtnVariant::kMinMax;
    std::optional<cpu::GptqSweep> sweep;
    std::vector<double> diag;
    if (c.method == quant::Method::kGptq) {
      sweep = cpu::PrepareGptqSweep(p.hessian, p.w.cols, c.act_order);
      job.sweep = &*sweep;
    } else {
      diag.resize(static_cast<size_t>(p.w.cols));
      for (int64_t col = 0; col < p.w.cols; ++col) diag[col] = p.hessian.Diagonal(col);
      job.diag = diag;
    }
    ScalarOutputs out;
    out.q = &q;
    RETURN_IF_ERROR(RunScalarJob(job, devices_, max_tiles_, out));
    return cpu::AssembleRtnTensor(p, c, bits, q, result);
  }

  // As cpu::MakeE8pQuantizer: scales from the weights, and with a Hessian
  // a trial BlockLDLQ sweep whose drifted weights give the final scales.
  absl::Status QuantizeE8p(const Problem& p, quant::QuantizeResult* result) const {
    const int64_t gs = config().group_size, groups = p.num_groups;
    const MatrixXd w =
        Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
            p.w.data, p.w.rows, p.w.cols)
            .cast<double>();
    std::vector<float> scales = cpu::E8pGroupScales(w, gs);
    std::optional<cpu::GptqSweep> sweep;
    if (!p.hessian.is_identity()) sweep = cpu::PrepareGptqSweep(p.hessian, p.w.cols, false);
    ScalarJob job;
    job.w = p.w;
    job.group_size = gs;
    job.sweep = sweep ? &*sweep : nullptr;
    ScalarOutputs out;
    out.e8p = {nullptr, p.w.rows, p.w.cols, gs};
    std::vector<uint16_t> indices(static_cast<size_t>(out.e8p.size()));
    out.e8p.indices = indices.data();
    if (sweep) {
      std::vector<double> energy(static_cast<size_t>(groups * p.w.rows));
      const E8pPass trial{scales, /*record_energy=*/true};
      job.e8p = &trial;
      ScalarOutputs trial_out = out;
      trial_out.energy = energy.data();
      RETURN_IF_ERROR(RunScalarJob(job, devices_, max_tiles_, trial_out));
      for (int64_t g = 0; g < groups; ++g) {
        double sum = 0;
        for (int64_t r = 0; r < p.w.rows; ++r) sum += energy[g * p.w.rows + r];
        scales[g] = cpu::E8pScaleOf(sum, p.w.rows * std::min(gs, p.w.cols - g * gs));
      }
    }
    const E8pPass final_pass{scales, /*record_energy=*/false};
    job.e8p = &final_pass;
    RETURN_IF_ERROR(RunScalarJob(job, devices_, max_tiles_, out));
    return cpu::AssembleE8pTensor(p, config(), scales, indices, result);
  }

  std::vector<int> devices_;
  int64_t max_tiles_;  // 0: passes as large as memory allows
};

}  // namespace

std::unique_ptr<engine::Quantizer> NewCudaScalarQuantizer(const quant::QuantizerConfig& config,
                                                          std::vector<int> devices,
                                                          int64_t max_tiles) {
  return std::make_unique<CudaScalarQuantizer>(config, std::move(devices), max_tiles);
}

}  // namespace glvq::cuda
