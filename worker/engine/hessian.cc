#include "worker/engine/hessian.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace glvq::engine {

double MeanDiagonal(const double* data, int64_t n, int64_t stride) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += data[i * stride];
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

absl::StatusOr<PreparedHessian> PreparedHessian::FromData(const double* data, int64_t n,
                                                          int64_t cols, double damp,
                                                          double mean_diagonal) {
  if (n != cols) {
    return absl::InvalidArgumentError(
        absl::StrCat("Hessian is ", n, "x", n, " but the weight has ", cols, " input columns"));
  }
  Eigen::MatrixXd h = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                                     Eigen::RowMajor>>(data, n, n);
  if (!h.allFinite()) return absl::InvalidArgumentError("Hessian has NaN or Inf entries");
  const double scale = h.cwiseAbs().maxCoeff();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      if (std::abs(h(i, j) - h(j, i)) > 1e-6 * scale) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "Hessian is not symmetric: H[%d,%d]=%g but H[%d,%d]=%g", i, j, h(i, j), j, i, h(j, i)));
      }
    }
  }
  const double mean_diag = mean_diagonal > 0 ? mean_diagonal : MeanDiagonal(data, n, n + 1);
  if (!(mean_diag > 0)) {
    return absl::InvalidArgumentError("Hessian has a non-positive mean diagonal");
  }
  h = 0.5 * (h + h.transpose());
  h.diagonal().array() += damp * mean_diag;
  Eigen::LLT<Eigen::MatrixXd> llt(h);
  if (llt.info() != Eigen::Success) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Hessian is not positive definite even after damping by %g x mean(diag)", damp));
  }
  return PreparedHessian(n, std::move(h));
}

PreparedHessian PreparedHessian::Identity(int64_t n) { return PreparedHessian(n, std::nullopt); }

Eigen::MatrixXd PreparedHessian::Matrix() const {
  return h_ ? *h_ : Eigen::MatrixXd::Identity(n_, n_);
}

Eigen::MatrixXd PreparedHessian::Block(int64_t c0, int64_t w) const {
  return h_ ? Eigen::MatrixXd(h_->block(c0, c0, w, w)) : Eigen::MatrixXd::Identity(w, w);
}

Eigen::MatrixXd PreparedHessian::InverseCholeskyUpper() const { return InverseCholeskyUpper({}); }

Eigen::MatrixXd PreparedHessian::InverseCholeskyUpper(std::span<const int64_t> order) const {
  if (!h_) return Eigen::MatrixXd::Identity(n_, n_);
  const Eigen::MatrixXd h = order.empty() ? *h_ : Eigen::MatrixXd((*h_)(order, order));
  const Eigen::MatrixXd inv = h.llt().solve(Eigen::MatrixXd::Identity(n_, n_));
  Eigen::MatrixXd sym = 0.5 * (inv + inv.transpose());
  return sym.llt().matrixU();
}

double PreparedHessian::WeightedSquaredNorm(const float* a, int64_t rows) const {
  const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
      m(a, rows, n_);
  if (!h_) return m.cast<double>().squaredNorm();
  const Eigen::MatrixXd md = m.cast<double>();
  return (md * *h_).cwiseProduct(md).sum();
}

}  // namespace glvq::engine
