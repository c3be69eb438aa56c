#include "worker/engine/rht.h"

#include <cstring>

#include "common/base/random.h"

namespace glvq::engine {
namespace {

// Identities that keep the two seeds independent of each other and of any
// other stream derived from the problem seed.
constexpr char kRowTag[] = "glvq.rht.rows";
constexpr char kColTag[] = "glvq.rht.cols";

std::vector<double> ToDouble(std::span<const float> w) {
  return std::vector<double>(w.begin(), w.end());
}

void CopyRounded(const std::vector<double>& from, std::span<float> to) {
  for (size_t i = 0; i < from.size(); ++i) to[i] = static_cast<float>(from[i]);
}

}  // namespace

RhtSeeds DeriveRhtSeeds(uint64_t problem_seed) {
  return {DeriveSeed(problem_seed, Fnv1a64(kRowTag, std::strlen(kRowTag))),
          DeriveSeed(problem_seed, Fnv1a64(kColTag, std::strlen(kColTag)))};
}

void RhtForward(std::span<double> w, int64_t rows, int64_t cols, const RhtSeeds& seeds) {
  glvq::RhtForward(w, rows, cols, seeds);
}

void RhtInverse(std::span<double> w, int64_t rows, int64_t cols, const RhtSeeds& seeds) {
  glvq::RhtInverse(w, rows, cols, seeds);
}

void RhtForward(std::span<float> w, int64_t rows, int64_t cols, const RhtSeeds& seeds) {
  std::vector<double> d = ToDouble(w);
  glvq::RhtForward(d, rows, cols, seeds);
  CopyRounded(d, w);
}

void RhtInverse(std::span<float> w, int64_t rows, int64_t cols, const RhtSeeds& seeds) {
  std::vector<double> d = ToDouble(w);
  glvq::RhtInverse(d, rows, cols, seeds);
  CopyRounded(d, w);
}

std::vector<float> RhtTransformWeight(MatrixView w, const RhtSeeds& seeds) {
  std::vector<float> out(w.data, w.data + w.rows * w.cols);
  RhtForward(std::span<float>(out), w.rows, w.cols, seeds);
  return out;
}

absl::StatusOr<PreparedHessian> RhtTransformHessian(const PreparedHessian& h,
                                                    uint64_t col_seed) {
  if (h.is_identity()) return h;
  const int64_t n = h.n();
  const Eigen::MatrixXd m = h.Matrix();
  std::vector<double> data(static_cast<size_t>(n * n));
  Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> rm(
      data.data(), n, n);
  rm = m;
  glvq::RhtForward(data, n, n, {col_seed, col_seed});
  // Rounding leaves H̃ symmetric only to ~1e-16; make it exact.
  const Eigen::MatrixXd sym = 0.5 * (rm + rm.transpose());
  rm = sym;
  return PreparedHessian::FromData(data.data(), n, n, /*damp=*/0.0);
}

std::vector<int64_t> RhtSeedComponent(const RhtSeeds& seeds) {
  return {static_cast<int64_t>(seeds.row), static_cast<int64_t>(seeds.col)};
}

}  // namespace glvq::engine
