// The synthetic LLM-like weights have the statistics they claim.
#include "common/synthetic/example_model.h"

#include <gtest/gtest.h>

#include <cmath>

namespace glvq {
namespace {

struct Moments {
  double std, kurtosis;
};

Moments Measure(const std::vector<float>& w) {
  double m2 = 0, m4 = 0;
  for (float v : w) {
    m2 += double(v) * v;
    m4 += double(v) * v * v * v;
  }
  m2 /= static_cast<double>(w.size());
  m4 /= static_cast<double>(w.size());
  return {std::sqrt(m2), m4 / (m2 * m2)};
}

TEST(LlmLikeWeight, HeavyTailedWithExpectedScaleAndDeterministic) {
  LlmLikeWeightOptions o;
  o.rows = 512;
  o.cols = 512;
  o.seed = 5;
  const std::vector<float> w = MakeLlmLikeWeight(o);
  ASSERT_EQ(w.size(), 512u * 512u);
  const Moments m = Measure(w);
  EXPECT_GT(m.std, 0.7 / std::sqrt(512.0));
  EXPECT_LT(m.std, 1.8 / std::sqrt(512.0));
  EXPECT_GT(m.kurtosis, 4.0) << "heavier tails than a Gaussian (3)";
  EXPECT_EQ(MakeLlmLikeWeight(o), w);
  o.seed = 6;
  EXPECT_NE(MakeLlmLikeWeight(o), w);
}

TEST(LlmLikeWeight, OutlierColumnsStandOut) {
  LlmLikeWeightOptions o;
  o.rows = 256;
  o.cols = 400;
  o.outlier_fraction = 0.01;
  o.outlier_gain_min = 10.0;
  o.outlier_gain_max = 20.0;
  const std::vector<float> w = MakeLlmLikeWeight(o);
  std::vector<double> col_rms(400, 0.0);
  for (int64_t r = 0; r < o.rows; ++r) {
    for (int64_t c = 0; c < o.cols; ++c) col_rms[c] += double(w[r * o.cols + c]) * w[r * o.cols + c];
  }
  std::sort(col_rms.begin(), col_rms.end());
  EXPECT_GT(std::sqrt(col_rms.back() / col_rms[200]), 5.0) << "largest column vs median";
}

}  // namespace
}  // namespace glvq
