#include "model/gain_linear.h"

#include <cmath>
#include <vector>

namespace glvq::model {
namespace {

// b expanded to one entry per column.
Eigen::RowVectorXf ColumnGains(const GainLinear& l) {
  Eigen::RowVectorXf b(l.cols());
  for (int64_t c = 0; c < l.cols(); ++c) b(c) = std::exp(l.log_group_gain(c / l.group_size));
  return b;
}

Eigen::RowVectorXf RowGains(const GainLinear& l) {
  return l.log_row_gain.array().exp().matrix().transpose();
}

// x ← rows transformed by T_n (the input side) or T_mᵀ/T_m (the output side).
void ToInputBasis(const GainLinear& l, RowMatrix& x) {
  if (l.rht) TransformRows(RandomizedHadamard(l.cols(), l.rht->col), /*inverse=*/false, x);
}
void FromInputBasis(const GainLinear& l, RowMatrix& dx) {
  if (l.rht) TransformRows(RandomizedHadamard(l.cols(), l.rht->col), /*inverse=*/true, dx);
}
void FromOutputBasis(const GainLinear& l, RowMatrix& y) {
  if (l.rht) TransformRows(RandomizedHadamard(l.rows(), l.rht->row), /*inverse=*/true, y);
}
void ToOutputBasis(const GainLinear& l, RowMatrix& dy) {
  if (l.rht) TransformRows(RandomizedHadamard(l.rows(), l.rht->row), /*inverse=*/false, dy);
}

}  // namespace

GainLinear GainLinear::Make(RowMatrix base, std::optional<RhtSeeds> rht, int64_t group_size,
                            bool tune_rows, bool tune_groups, Eigen::VectorXf bias) {
  GainLinear l;
  l.rht = rht;
  l.group_size = group_size;
  l.tune_rows = tune_rows;
  l.tune_groups = tune_groups;
  l.log_row_gain = Eigen::VectorXf::Zero(base.rows());
  l.log_group_gain = Eigen::VectorXf::Zero((base.cols() + group_size - 1) / group_size);
  l.base = std::move(base);
  l.bias = std::move(bias);
  return l;
}

RowMatrix GainLinear::Dense() const {
  RowMatrix w = base;
  w.array().colwise() *= RowGains(*this).transpose().array();
  w.array().rowwise() *= ColumnGains(*this).array();
  if (!rht) return w;
  std::vector<double> d(w.data(), w.data() + w.size());
  RhtInverse(d, rows(), cols(), *rht);
  for (size_t i = 0; i < d.size(); ++i) w.data()[i] = static_cast<float>(d[i]);
  return w;
}

void GainLinearGrad::Resize(const GainLinear& l) {
  log_row_gain = Eigen::VectorXd::Zero(l.rows());
  log_group_gain = Eigen::VectorXd::Zero(l.groups());
}

void TransformRows(const RandomizedHadamard& t, bool inverse, RowMatrix& x) {
  // T acts on n elements of `lanes` doubles: x transposed, one lane per token.
  const int64_t tokens = x.rows(), n = x.cols();
  std::vector<double> lanes(static_cast<size_t>(tokens * n));
  for (int64_t r = 0; r < tokens; ++r) {
    for (int64_t c = 0; c < n; ++c) lanes[static_cast<size_t>(c * tokens + r)] = x(r, c);
  }
  if (inverse) {
    t.ApplyInverse(lanes, tokens);
  } else {
    t.Apply(lanes, tokens);
  }
  for (int64_t r = 0; r < tokens; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      x(r, c) = static_cast<float>(lanes[static_cast<size_t>(c * tokens + r)]);
    }
  }
}

RowMatrix Forward(const GainLinear& l, const RowMatrix& x, GainLinearTape* tape) {
  RowMatrix in = x;
  ToInputBasis(l, in);
  RowMatrix scaled = in.array().rowwise() * ColumnGains(l).array();
  RowMatrix pre(x.rows(), l.rows());
  pre.noalias() = scaled * l.base.transpose();
  RowMatrix y = pre.array().rowwise() * RowGains(l).array();
  FromOutputBasis(l, y);
  if (l.bias.size() != 0) y.rowwise() += l.bias.transpose();
  if (tape != nullptr) *tape = GainLinearTape{std::move(in), std::move(pre)};
  return y;
}

RowMatrix Backward(const GainLinear& l, const GainLinearTape& tape, const RowMatrix& dy,
                   GainLinearGrad& grad) {
  RowMatrix d_out = dy;
  ToOutputBasis(l, d_out);  // dL/d(ỹ), ỹ = pre ⊙ a
  if (l.tune_rows) {
    // dL/dα_r = a_r Σ_t dỹ_tr pre_tr = Σ_t dỹ_tr ỹ_tr.
    const Eigen::RowVectorXf a = RowGains(l);
    grad.log_row_gain += (d_out.cwiseProduct(tape.pre_gain).colwise().sum().array() * a.array())
                             .matrix()
                             .transpose()
                             .cast<double>();
  }
  RowMatrix d_pre = d_out.array().rowwise() * RowGains(l).array();
  RowMatrix d_scaled(dy.rows(), l.cols());
  d_scaled.noalias() = d_pre * l.base;  // dL/d(T_n x ⊙ b)
  const Eigen::RowVectorXf b = ColumnGains(l);
  if (l.tune_groups) {
    // dL/dβ_g = Σ_{c in g} b_c Σ_t d_scaled_tc in_tc.
    const Eigen::RowVectorXf per_column =
        d_scaled.cwiseProduct(tape.rotated_in).colwise().sum().array() * b.array();
    for (int64_t c = 0; c < l.cols(); ++c) grad.log_group_gain(c / l.group_size) += per_column(c);
  }
  RowMatrix dx = d_scaled.array().rowwise() * b.array();
  FromInputBasis(l, dx);
  return dx;
}

}  // namespace glvq::model
