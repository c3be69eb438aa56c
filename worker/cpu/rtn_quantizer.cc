#include "worker/cpu/rtn_quantizer.h"

#include <algorithm>
#include <vector>

#include "worker/cpu/scalar_grid.h"
#include "common/base/parallel.h"
#include "worker/engine/problem.h"

namespace glvq::cpu {
namespace {

using engine::Quantizer;

// Work units are (group, block of rows) so that a narrow matrix with few
// groups still spreads over the threads; each unit writes only its own
// grids and codes, so the thread count never changes the result.
constexpr int64_t kRowsPerTask = 64;

class RtnQuantizer final : public Quantizer {
 public:
  explicit RtnQuantizer(const quant::QuantizerConfig& c) : Quantizer(c) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, quant::QuantizeResult* result) const override {
    const int bits = static_cast<int>(config().bits);
    ScalarQuantization q(p.w.rows, p.w.cols, config().group_size);
    const int64_t row_blocks = (p.w.rows + kRowsPerTask - 1) / kRowsPerTask;
    ParallelFor(q.num_groups * row_blocks, config().threads, [&](int64_t task) {
      const int64_t r0 = (task % row_blocks) * kRowsPerTask;
      QuantizeRows(p, bits, task / row_blocks, r0, std::min(p.w.rows, r0 + kRowsPerTask), &q);
    });
    return AssembleRtnTensor(p, config(), bits, q, result);
  }

 private:
  void QuantizeRows(const Problem& p, int bits, int64_t g, int64_t r0, int64_t r1,
                    ScalarQuantization* q) const {
    const int64_t c0 = g * q->group_size, width = q->GroupWidth(g);
    std::vector<double> importance(static_cast<size_t>(width)), values(importance.size());
    for (int64_t c = 0; c < width; ++c) importance[c] = p.hessian.Diagonal(c0 + c);
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = p.w.data + r * p.w.cols + c0;
      std::copy(row, row + width, values.begin());
      const ScalarGrid grid = FitScalarGrid(values, importance, bits, config().rtn_variant);
      q->grid(g, r) = grid;
      for (int64_t c = 0; c < width; ++c) q->code(g, r, c) = grid.Encode(values[c]);
    }
  }
};

}  // namespace

std::unique_ptr<engine::Quantizer> MakeRtnQuantizer(const quant::QuantizerConfig& config) {
  return std::make_unique<RtnQuantizer>(config);
}

}  // namespace glvq::cpu
