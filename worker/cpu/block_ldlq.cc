#include "worker/cpu/block_ldlq.h"

#include <algorithm>

#include "common/base/parallel.h"

namespace glvq::cpu {
namespace {

using Eigen::MatrixXd;

// Columns whose feedback onto the rest of the matrix is applied as one
// product, rounded up to whole blocks so that blocks never straddle a batch.
constexpr int64_t kLazyColumns = 128;

void SweepRows(int64_t d, const MatrixXd* u, int64_t r0, const BlockCoder& code, MatrixXd* wp) {
  MatrixXd& w = *wp;
  const int64_t m = w.rows(), n = w.cols();
  const int64_t batch = (kLazyColumns + d - 1) / d * d;
  MatrixXd feedback(m, batch);  // (W_B − Ŵ_B) U_BB⁻¹ of the batch's blocks
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t b1 = std::min(b0 + batch, n);
    for (int64_t c0 = b0; c0 < b1; c0 += d) {
      const int64_t k = std::min(d, n - c0);
      const MatrixXd err = code(w, c0, k, r0);
      if (u == nullptr) continue;
      const auto u_bb = u->block(c0, c0, k, k).triangularView<Eigen::Upper>();
      feedback.middleCols(c0 - b0, k) = u_bb.transpose().solve(err.transpose()).transpose();
      const int64_t rest = b1 - c0 - k;
      w.middleCols(c0 + k, rest).noalias() -=
          feedback.middleCols(c0 - b0, k) * u->block(c0, c0 + k, k, rest);
    }
    if (u != nullptr && b1 < n) {
      w.rightCols(n - b1).noalias() -=
          feedback.leftCols(b1 - b0) * u->block(b0, b1, b1 - b0, n - b1);
    }
  }
}

}  // namespace

void SweepBlockLdlq(const MatrixXd& w, int64_t d, const MatrixXd* u, int threads,
                    const BlockCoder& code, MatrixXd* drifted) {
  const int64_t tasks = (w.rows() + kBlockLdlqRowsPerTask - 1) / kBlockLdlqRowsPerTask;
  ParallelFor(tasks, threads, [&](int64_t t) {
    const int64_t r0 = t * kBlockLdlqRowsPerTask, r1 = std::min<int64_t>(w.rows(), r0 + kBlockLdlqRowsPerTask);
    MatrixXd rows = w.middleRows(r0, r1 - r0);
    SweepRows(d, u, r0, code, &rows);
    if (drifted != nullptr) drifted->middleRows(r0, r1 - r0) = rows;
  });
}

}  // namespace glvq::cpu
