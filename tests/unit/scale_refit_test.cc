// worker/cpu/scale_refit.h against what least squares must do: recover
// gains that explain the targets exactly, never raise the loss, leave zero
// rows alone, and weight by H.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <vector>

#include "common/base/random.h"
#include "worker/cpu/scale_refit.h"

namespace glvq::cpu {
namespace {

using Eigen::MatrixXd;

MatrixXd Gaussian(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  MatrixXd m(rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) m(r, c) = rng.Normal();
  }
  return m;
}

MatrixXd Spd(int64_t n, uint64_t seed) {
  const MatrixXd x = Gaussian(4 * n, n, seed);
  return x.transpose() * x / double(4 * n) + 0.1 * MatrixXd::Identity(n, n);
}

// w = s_r · c_g · t exactly (in F32 gains): refitting from wrong gains
// finds a zero loss again (up to rounding).
TEST(ScaleRefit, RecoversGainsThatExplainTheTargets) {
  const int64_t rows = 12, cols = 40, group = 16;  // groups of 16, 16, 8
  const MatrixXd t = Gaussian(rows, cols, 1);
  const std::vector<float> true_row = {0.5f, 1, 2, 0.25f, 1.5f, 3, 1, 0.75f, 2.5f, 1, 0.1f, 4};
  const std::vector<float> true_group = {1.0f, 0.5f, 2.0f};
  MatrixXd w(rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) w(r, c) = double(true_row[r] * true_group[c / group]) * t(r, c);
  }
  const MatrixXd h = Spd(cols, 2);
  std::vector<float> row(rows, 1.0f), grp = {0.7f, 0.9f, 1.3f};
  const ScaleRefitStats st = RefitRankOneScales(w, t, &h, group, 20, &row, &grp);
  EXPECT_GT(st.loss_before, 1.0);
  EXPECT_LT(st.loss_after, 1e-6 * st.loss_before);
  // The model is rank one: gains are determined up to one common factor.
  const double k = double(grp[0]) / true_group[0];
  for (int64_t g = 0; g < 3; ++g) EXPECT_NEAR(grp[g], k * true_group[g], 1e-3 * k);
  for (int64_t r = 0; r < rows; ++r) EXPECT_NEAR(row[r] * k, true_row[r], 1e-3 * true_row[r]);
}

TEST(ScaleRefit, NeverRaisesTheLossAndKeepsZeroRows) {
  const int64_t rows = 16, cols = 64, group = 32;
  const MatrixXd w = Gaussian(rows, cols, 3);
  // Noisy "codes": correlated with w but not proportional to it.
  const MatrixXd t = w + 0.7 * Gaussian(rows, cols, 4);
  const MatrixXd h = Spd(cols, 5);
  std::vector<float> row(rows, 1.0f), grp(2, 1.0f);
  row[3] = 0;
  const ScaleRefitStats st = RefitRankOneScales(w, t, &h, group, 3, &row, &grp);
  EXPECT_LT(st.loss_after, st.loss_before);
  EXPECT_GT(st.steps_kept, 0);
  EXPECT_EQ(row[3], 0.0f);
  for (float g : grp) EXPECT_GT(g, 0.0f);
  // Already optimal: a second refit keeps what it has.
  std::vector<float> row2 = row, grp2 = grp;
  const ScaleRefitStats again = RefitRankOneScales(w, t, &h, group, 3, &row2, &grp2);
  EXPECT_LE(again.loss_after, again.loss_before);
  EXPECT_NEAR(again.loss_after, st.loss_after, 1e-6 * st.loss_after);
}

// The H-weighted optimum differs from the plain-MSE one, and each is best
// under its own loss.
TEST(ScaleRefit, WeightsTheLossByTheHessian) {
  const int64_t rows = 8, cols = 32, group = 32;
  const MatrixXd w = Gaussian(rows, cols, 6);
  const MatrixXd t = w + 0.8 * Gaussian(rows, cols, 7);
  const MatrixXd h = Spd(cols, 8);
  std::vector<float> row_h(rows, 1.0f), grp_h(1, 1.0f), row_i = row_h, grp_i = grp_h;
  RefitRankOneScales(w, t, &h, group, 5, &row_h, &grp_h);
  RefitRankOneScales(w, t, nullptr, group, 5, &row_i, &grp_i);
  auto loss = [&](const std::vector<float>& row, const std::vector<float>& grp, bool weighted) {
    std::vector<float> r = row, g = grp;
    return RefitRankOneScales(w, t, weighted ? &h : nullptr, group, 0, &r, &g).loss_before;
  };
  EXPECT_LT(loss(row_h, grp_h, true), loss(row_i, grp_i, true));
  EXPECT_LT(loss(row_i, grp_i, false), loss(row_h, grp_h, false));
}

}  // namespace
}  // namespace glvq::cpu
