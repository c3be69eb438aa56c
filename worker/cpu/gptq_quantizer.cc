#include "worker/cpu/gptq_quantizer.h"

#include <Eigen/Dense>
#include <algorithm>
#include <vector>

#include "worker/cpu/gptq_sweep.h"
#include "worker/cpu/scalar_grid.h"
#include "common/base/parallel.h"
#include "worker/engine/problem.h"

namespace glvq::cpu {
namespace {

using Eigen::MatrixXd;
using engine::Quantizer;

// Rows never interact in GPTQ, so blocks of rows are independent tasks. The
// block size is fixed (not derived from the thread count) so that every
// product is evaluated identically however many threads there are.
constexpr int64_t kRowsPerTask = 64;

class GptqQuantizer final : public Quantizer {
 public:
  explicit GptqQuantizer(const quant::QuantizerConfig& c) : Quantizer(c) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, quant::QuantizeResult* result) const override {
    const int bits = static_cast<int>(config().bits);
    ScalarQuantization q(p.w.rows, p.w.cols, config().group_size);
    const GptqSweep sweep = PrepareGptqSweep(p.hessian, p.w.cols, config().act_order);
    const int64_t tasks = (p.w.rows + kRowsPerTask - 1) / kRowsPerTask;
    ParallelFor(tasks, config().threads, [&](int64_t t) {
      const int64_t r0 = t * kRowsPerTask;
      SweepRows(p, sweep, bits, r0, std::min(p.w.rows, r0 + kRowsPerTask), &q);
    });
    return AssembleRtnTensor(p, config(), bits, q, result);
  }

 private:
  bool min_max() const { return config().rtn_variant == quant::RtnVariant::kMinMax; }

  // Act order's grids, fitted on the original weights of rows [r0, r1).
  void FitStaticGroups(const Problem& p, const GptqSweep& s, int bits, int64_t r0, int64_t r1,
                       ScalarQuantization* q) const {
    std::vector<double> row(static_cast<size_t>(q->group_size));
    for (int64_t g = 0; g < q->num_groups; ++g) {
      const int64_t c0 = g * q->group_size, width = q->GroupWidth(g);
      for (int64_t r = r0; r < r1; ++r) {
        std::copy(p.w.data + r * p.w.cols + c0, p.w.data + r * p.w.cols + c0 + width, row.begin());
        q->grid(g, r) =
            FitScalarGridOf(StridedValues{row.data(), 1}, StridedValues{s.diag.data() + c0, 1},
                            width, bits, min_max());
      }
    }
  }

  // GPTQ on rows [r0, r1): w holds them column-major in sweep order, each
  // row swept through a batch by GptqSweepRow (the CUDA kernel's code), the
  // batch's errors then moved onto the later columns in one product.
  void SweepRows(const Problem& p, const GptqSweep& s, int bits, int64_t r0, int64_t r1,
                 ScalarQuantization* q) const {
    const int64_t m = r1 - r0, n = p.w.cols;
    MatrixXd w(m, n);
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t k = 0; k < n; ++k) w(r, k) = p.w.data[(r0 + r) * n + s.order[k]];
    }
    if (s.static_groups) FitStaticGroups(p, s, bits, r0, r1, q);
    const GptqSweepView view = s.View(bits, min_max());
    const ScalarCodesView out = q->view();
    MatrixXd err(m, kGptqBatch);
    for (int64_t b0 = 0, b1; b0 < n; b0 = b1) {
      b1 = GptqBatchEnd(b0, n, q->group_size, s.static_groups);
      for (int64_t r = 0; r < m; ++r) {
        GptqSweepRow(view, b0, b1, w.data() + r, m, err.data() + r, m, r0 + r, out);
      }
      w.rightCols(n - b1).noalias() -= err.leftCols(b1 - b0) * s.u.block(b0, b1, b1 - b0, n - b1);
    }
  }
};

}  // namespace

std::unique_ptr<engine::Quantizer> MakeGptqQuantizer(const quant::QuantizerConfig& config) {
  return std::make_unique<GptqQuantizer>(config);
}

}  // namespace glvq::cpu
