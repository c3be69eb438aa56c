#include "worker/cpu/scale_refit.h"

#include <algorithm>
#include <cmath>

namespace glvq::cpu {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

int64_t GroupOf(int64_t col, int64_t group_size) { return col / group_size; }

MatrixXd TimesH(const MatrixXd& x, const MatrixXd* h) { return h ? MatrixXd(x * *h) : x; }

// Ŵ with the gains as the decoder applies them: one F32 product s_r · c_g.
MatrixXd Reconstruct(const MatrixXd& t, int64_t group_size, const std::vector<float>& row,
                     const std::vector<float>& group) {
  MatrixXd out(t.rows(), t.cols());
  for (int64_t r = 0; r < t.rows(); ++r) {
    for (int64_t c = 0; c < t.cols(); ++c) {
      const float s = row[r] * group[GroupOf(c, group_size)];
      out(r, c) = double(s) * t(r, c);
    }
  }
  return out;
}

double Loss(const MatrixXd& w, const MatrixXd& t, const MatrixXd* h, int64_t group_size,
            const std::vector<float>& row, const std::vector<float>& group) {
  const MatrixXd e = w - Reconstruct(t, group_size, row, group);
  return (TimesH(e, h).array() * e.array()).sum();
}

// Best row gains for the current group gains.
std::vector<float> RowStep(const MatrixXd& w, const MatrixXd& t, const MatrixXd* h,
                           int64_t group_size, const std::vector<float>& row,
                           const std::vector<float>& group) {
  MatrixXd v = t;
  for (int64_t c = 0; c < t.cols(); ++c) v.col(c) *= double(group[GroupOf(c, group_size)]);
  const MatrixXd vh = TimesH(v, h);
  std::vector<float> out = row;
  for (int64_t r = 0; r < t.rows(); ++r) {
    const double den = vh.row(r).dot(v.row(r));
    if (row[r] == 0 || !(den > 0)) continue;  // zero rows stay zero
    const double s = vh.row(r).dot(w.row(r)) / den;
    if (std::isfinite(s) && s > 0) out[r] = static_cast<float>(s);
  }
  return out;
}

// Best group gains for the current row gains; `group` unchanged if the
// system is singular or a gain comes out ≤ 0. `wh` = W H (constant across
// rounds, so computed once by the caller).
std::vector<float> GroupStep(const MatrixXd& wh, const MatrixXd& t, const MatrixXd* h,
                             int64_t group_size, const std::vector<float>& row,
                             const std::vector<float>& group) {
  const int64_t n = t.cols(), groups = static_cast<int64_t>(group.size());
  MatrixXd st = t;  // diag(s) T
  for (int64_t r = 0; r < t.rows(); ++r) st.row(r) *= double(row[r]);
  const MatrixXd q = st.transpose() * st;  // Tᵀ diag(s²) T
  const MatrixXd hq = h ? MatrixXd(h->array() * q.array()) : MatrixXd(q.diagonal().asDiagonal());
  MatrixXd a = MatrixXd::Zero(groups, groups);
  VectorXd b = VectorXd::Zero(groups);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t gi = GroupOf(i, group_size);
    b(gi) += st.col(i).dot(wh.col(i));
    for (int64_t j = 0; j < n; ++j) a(gi, GroupOf(j, group_size)) += hq(i, j);
  }
  const Eigen::LDLT<MatrixXd> ldlt(a);
  if (ldlt.info() != Eigen::Success) return group;
  const VectorXd c = ldlt.solve(b);
  std::vector<float> out(group.size());
  for (int64_t g = 0; g < groups; ++g) {
    if (!std::isfinite(c(g)) || !(c(g) > 0)) return group;
    out[g] = static_cast<float>(c(g));
  }
  return out;
}

}  // namespace

ScaleRefitStats RefitRankOneScales(const MatrixXd& w, const MatrixXd& t, const MatrixXd* h,
                                   int64_t group_size, int rounds, std::vector<float>* row,
                                   std::vector<float>* group) {
  ScaleRefitStats stats;
  stats.loss_before = Loss(w, t, h, group_size, *row, *group);
  double loss = stats.loss_before;
  auto keep_if_better = [&](std::vector<float> rows, std::vector<float> groups) {
    const double l = Loss(w, t, h, group_size, rows, groups);
    if (!(l < loss)) return false;
    loss = l;
    *row = std::move(rows);
    *group = std::move(groups);
    ++stats.steps_kept;
    return true;
  };
  const MatrixXd wh = TimesH(w, h);
  for (int k = 0; k < rounds; ++k) {
    const bool rows_moved =
        keep_if_better(RowStep(w, t, h, group_size, *row, *group), *group);
    const bool groups_moved =
        keep_if_better(*row, GroupStep(wh, t, h, group_size, *row, *group));
    if (!rows_moved && !groups_moved) break;
  }
  stats.loss_after = loss;
  return stats;
}

}  // namespace glvq::cpu
