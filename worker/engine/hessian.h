// Validated, damped layer Hessians H = E[x xᵀ] (n × n, n = input columns)
// and the factorizations the methods need. Without calibration data the
// Hessian is the identity (plain weight MSE) and nothing is damped.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <optional>
#include <span>

#include "absl/status/statusor.h"

namespace glvq::engine {

// mean(diag H) of an n × n row-major matrix, summed in index order: the
// one definition of the damping reference, so that a range of groups
// (worker/engine/group_range.h) damps its block bit for bit as the whole
// tensor does. `stride` is the distance between diagonal elements (n + 1
// for a matrix, 1 for a diagonal already extracted).
double MeanDiagonal(const double* data, int64_t n, int64_t stride);

class PreparedHessian {
 public:
  // Checks `data` (n × n row-major, n == cols): finite, symmetric to a
  // relative 1e-6, then damps H += damp·mean(diag H)·I and requires a
  // Cholesky factorization to succeed (PSD after damping). INVALID_ARGUMENT
  // with the reason otherwise. `mean_diagonal` > 0 replaces mean(diag H) in
  // the damping (for a diagonal block of a larger Hessian: see HessianView).
  static absl::StatusOr<PreparedHessian> FromData(const double* data, int64_t n,
                                                  int64_t cols, double damp,
                                                  double mean_diagonal = 0);
  static PreparedHessian Identity(int64_t n);

  int64_t n() const { return n_; }
  bool is_identity() const { return !h_.has_value(); }
  // The damped Hessian (the identity materialised if is_identity()).
  Eigen::MatrixXd Matrix() const;
  // The w × w diagonal block starting at column c0.
  Eigen::MatrixXd Block(int64_t c0, int64_t w) const;
  double Diagonal(int64_t i) const { return h_ ? (*h_)(i, i) : 1.0; }

  // Upper-triangular U with H⁻¹ = Uᵀ U (GPTQ's chol(H⁻¹) upper factor).
  // Computed once and cached by the caller as needed.
  Eigen::MatrixXd InverseCholeskyUpper() const;
  // The same for H with its rows and columns taken in `order` (a
  // permutation of 0..n-1; position k is column order[k]), as GPTQ's act
  // order needs: the factor depends on the elimination order.
  Eigen::MatrixXd InverseCholeskyUpper(std::span<const int64_t> order) const;

  // tr(A H Aᵀ) for a rows × n row-major matrix A (double accumulation).
  double WeightedSquaredNorm(const float* a, int64_t rows) const;

 private:
  PreparedHessian(int64_t n, std::optional<Eigen::MatrixXd> h) : n_(n), h_(std::move(h)) {}
  int64_t n_;
  std::optional<Eigen::MatrixXd> h_;
};

}  // namespace glvq::engine
