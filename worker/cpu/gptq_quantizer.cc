#include "worker/cpu/gptq_quantizer.h"

#include <Eigen/Dense>
#include <algorithm>
#include <numeric>
#include <vector>

#include "worker/cpu/scalar_grid.h"
#include "worker/engine/parallel.h"
#include "worker/engine/problem.h"

namespace glvq::cpu {
namespace {

using Eigen::MatrixXd;
using engine::Quantizer;

// Lazy batch: errors of this many columns are applied to the columns after
// the batch in one matrix product (same result as per-column updates, up
// to rounding, at GEMM speed).
constexpr int64_t kBlock = 128;
// Rows never interact in GPTQ, so blocks of rows are independent tasks. The
// block size is fixed (not derived from the thread count) so that every
// product is evaluated identically however many threads there are.
constexpr int64_t kRowsPerTask = 64;

// The processing order and everything that depends on it.
struct Sweep {
  std::vector<int64_t> order;  // position k quantizes original column order[k]
  MatrixXd u;                  // chol(H⁻¹) upper, H taken in `order`
  std::vector<double> diag;    // diag(H) of the original columns
  // Act order visits a group's columns out of sequence, so its grids are
  // fitted upfront on the original weights (GPTQ's "static groups"):
  // the format's groups are consecutive original columns.
  bool static_groups = false;
};

class GptqQuantizer final : public Quantizer {
 public:
  explicit GptqQuantizer(const engine::QuantizerConfig& c) : Quantizer(c) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, engine::QuantizeResult* result) const override {
    const int bits = static_cast<int>(config().bits);
    ScalarQuantization q(p.w.rows, p.w.cols, config().group_size);
    const Sweep sweep = PrepareSweep(p);
    const int64_t tasks = (p.w.rows + kRowsPerTask - 1) / kRowsPerTask;
    engine::ParallelFor(tasks, config().threads, [&](int64_t t) {
      const int64_t r0 = t * kRowsPerTask;
      SweepRows(p, sweep, bits, r0, std::min(p.w.rows, r0 + kRowsPerTask), &q);
    });
    return AssembleRtnTensor(p, config(), bits, q, result);
  }

 private:
  Sweep PrepareSweep(const Problem& p) const {
    Sweep s;
    const int64_t n = p.w.cols;
    s.diag.resize(static_cast<size_t>(n));
    for (int64_t c = 0; c < n; ++c) s.diag[c] = p.hessian.Diagonal(c);
    s.order.resize(static_cast<size_t>(n));
    std::iota(s.order.begin(), s.order.end(), int64_t{0});
    s.static_groups = config().act_order;
    if (config().act_order) {
      std::stable_sort(s.order.begin(), s.order.end(),
                       [&](int64_t a, int64_t b) { return s.diag[a] > s.diag[b]; });
      s.u = p.hessian.InverseCholeskyUpper(s.order);
    } else {
      s.u = p.hessian.InverseCholeskyUpper();
    }
    return s;
  }

  // End of the lazy batch starting at b0. A group whose grid is fitted
  // inside a batch must lie wholly in it: its later columns would otherwise
  // miss the updates still pending from the batch's earlier columns.
  int64_t BatchEnd(int64_t b0, int64_t n, bool static_groups) const {
    const int64_t b1 = std::min(b0 + kBlock, n), gs = config().group_size;
    if (static_groups) return b1;
    for (int64_t s = (b0 / gs + 1) * gs; s < b1; s += gs) {
      if (std::min(s + gs, n) > b1) return s;
    }
    return b1;
  }

  // Fits the grids of group g for rows r0.. from `values` (rows × width).
  void FitGroup(const MatrixXd& values, const Sweep& s, int bits, int64_t g, int64_t r0,
                ScalarQuantization* q) const {
    const int64_t c0 = g * q->group_size;
    const std::span<const double> importance(s.diag.data() + c0, values.cols());
    std::vector<double> row(static_cast<size_t>(values.cols()));
    for (int64_t r = 0; r < values.rows(); ++r) {
      Eigen::Map<Eigen::RowVectorXd>(row.data(), values.cols()) = values.row(r);
      q->grid(g, r0 + r) = FitScalarGrid(row, importance, bits, config().rtn_variant);
    }
  }

  void FitStaticGroups(const Problem& p, const Sweep& s, int bits, int64_t r0, int64_t r1,
                       ScalarQuantization* q) const {
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> w(
        p.w.data, p.w.rows, p.w.cols);
    for (int64_t g = 0; g < q->num_groups; ++g) {
      const MatrixXd values =
          w.block(r0, g * q->group_size, r1 - r0, q->GroupWidth(g)).cast<double>();
      FitGroup(values, s, bits, g, r0, q);
    }
  }

  // GPTQ on rows [r0, r1): w holds them column-major in sweep order.
  void SweepRows(const Problem& p, const Sweep& s, int bits, int64_t r0, int64_t r1,
                 ScalarQuantization* q) const {
    const int64_t m = r1 - r0, n = p.w.cols, gs = config().group_size;
    MatrixXd w(m, n);
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t k = 0; k < n; ++k) w(r, k) = p.w.data[(r0 + r) * n + s.order[k]];
    }
    if (s.static_groups) FitStaticGroups(p, s, bits, r0, r1, q);
    MatrixXd err(m, kBlock);
    for (int64_t b0 = 0, b1; b0 < n; b0 = b1) {
      b1 = BatchEnd(b0, n, s.static_groups);
      for (int64_t k = b0; k < b1; ++k) {
        const int64_t col = s.order[k], g = col / gs;
        if (!s.static_groups && col == g * gs) {
          FitGroup(w.middleCols(k, q->GroupWidth(g)), s, bits, g, r0, q);
        }
        for (int64_t r = 0; r < m; ++r) {
          const ScalarGrid& grid = q->grid(g, r0 + r);
          const uint8_t code = grid.Encode(w(r, k));
          q->code(g, r0 + r, col - g * gs) = code;
          err(r, k - b0) = (w(r, k) - grid.Decode(code)) / s.u(k, k);
        }
        w.middleCols(k + 1, b1 - k - 1).noalias() -=
            err.col(k - b0) * s.u.row(k).segment(k + 1, b1 - k - 1);
      }
      w.rightCols(n - b1).noalias() -= err.leftCols(b1 - b0) * s.u.block(b0, b1, b1 - b0, n - b1);
    }
  }
};

}  // namespace

std::unique_ptr<engine::Quantizer> MakeGptqQuantizer(const engine::QuantizerConfig& config) {
  return std::make_unique<GptqQuantizer>(config);
}

}  // namespace glvq::cpu
