// GLVQ (CPU reference) against docs/algorithms.md's figures and invariants.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/base/random.h"
#include "common/synthetic/example_model.h"
#include "worker/cpu/glvq_group.h"
#include "worker/cpu/sdba.h"
#include "worker/cpu/sphere_decoder.h"
#include "worker/engine/hessian.h"
#include "worker/engine/quantizer.h"
#include "tests/support/test_support.h"

namespace glvq::engine {
namespace {

using glvq::testing::GaussianValues;


// The paper's configuration: these tests pin its behaviour; the defaults
// (the best preset) are tested in glvq_defaults_test.cc.
quant::QuantizerConfig Glvq(double bits, int dim) {
  quant::QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = quant::Method::kGlvq;
  c.bits = bits;
  c.dim = dim;
  return c;
}

quant::QuantizeResult QuantizeWith(const quant::QuantizerConfig& c, const std::vector<float>& w, int64_t rows,
                   int64_t cols, const HessianView* h = nullptr) {
  auto q = MakeQuantizer(c);
  EXPECT_TRUE(q.ok()) << q.status();
  auto r = (*q)->Quantize("test.weight", {w.data(), rows, cols}, h);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

TEST(Glvq, GaussianTwoBitsWithoutCompandingMatchesUniformScalar) {
  const int64_t rows = 256, cols = 512;
  const auto w = GaussianValues(rows * cols, 1);
  quant::QuantizerConfig c = Glvq(2, 8);
  c.glvq.mu_min = c.glvq.mu_max = 0;
  const quant::QuantizeResult r = QuantizeWith(c, w, rows, cols);
  EXPECT_NEAR(r.tensor.quality->nmse, 0.118, 0.118 * 0.05);
  EXPECT_DOUBLE_EQ(r.accounting.PayloadPerWeight(), 2.0);
}

TEST(Glvq, GaussianStepTableGivesTheOptimalUniformScalarMse) {
  // docs/algorithms.md §4: optimal uniform scalar MSE on N(0,1); Lloyd–Max at
  // 1 bit coincides with it.
  const double expected[4] = {0.3634, 0.1188, 0.0374, 0.01154};
  const auto x = GaussianValues(1'000'000, 17);
  for (int b = 1; b <= 4; ++b) {
    const double step = cpu::UniformStepForGaussian(b), half = std::ldexp(1.0, b - 1);
    double mse = 0;
    for (float v : x) {
      const double q = (std::clamp(std::floor(v / step), -half, half - 1) + 0.5) * step;
      mse += (v - q) * (v - q);
    }
    EXPECT_NEAR(mse / static_cast<double>(x.size()), expected[b - 1], 0.01 * expected[b - 1]) << b;
  }
}

TEST(Glvq, NoGranularGainWithBabaiInAnyDimension) {
  const int64_t rows = 256, cols = 512;
  const auto w = GaussianValues(rows * cols, 18);
  for (int d : {2, 4}) {
    quant::QuantizerConfig c = Glvq(2, d);
    c.glvq.mu_min = c.glvq.mu_max = 0;
    EXPECT_NEAR(QuantizeWith(c, w, rows, cols).tensor.quality->nmse, 0.1188, 0.1188 * 0.05) << d;
  }
}

TEST(Glvq, MoreBitsNeverWorse) {
  const int64_t rows = 64, cols = 256;
  const auto w = GaussianValues(rows * cols, 2);
  double prev = 1e9;
  for (int b = 1; b <= 4; ++b) {
    const double nmse = QuantizeWith(Glvq(b, 8), w, rows, cols).tensor.quality->nmse;
    EXPECT_LT(nmse, prev) << "bits " << b;
    prev = nmse;
  }
}

TEST(Glvq, RaggedShapesRoundTripExactly) {
  for (int dim : {8, 32}) {
    const int64_t rows = 13, cols = 172;
    const auto w = GaussianValues(rows * cols, 3);
    const quant::QuantizeResult r = QuantizeWith(Glvq(3, dim), w, rows, cols);
    ASSERT_EQ(r.tensor.NumGroups(), 2);
    EXPECT_EQ(r.tensor.GroupWidth(1), 44);
    std::vector<float> decoded(rows * cols);
    ASSERT_TRUE(Quantizer::Decode(r.tensor, decoded).ok());
    EXPECT_EQ(decoded, r.dequantized);
    EXPECT_LT(r.tensor.quality->nmse, 0.1);
  }
}

TEST(Glvq, IdenticalForAnyThreadCount) {
  const int64_t rows = 32, cols = 640;
  const auto w = GaussianValues(rows * cols, 4);
  quant::QuantizerConfig c = Glvq(2, 8);
  c.threads = 1;
  const quant::QuantizeResult one = QuantizeWith(c, w, rows, cols);
  c.threads = 3;
  const quant::QuantizeResult three = QuantizeWith(c, w, rows, cols);
  EXPECT_EQ(one.tensor, three.tensor);
  EXPECT_EQ(QuantizeWith(c, w, rows, cols).tensor, three.tensor) << "and from run to run";
}

// A Hessian of correlated activations with outlier channels.
std::vector<double> CorrelatedHessian(int64_t n, uint64_t seed, double outlier_gain) {
  Rng rng(seed);
  std::vector<double> scale(n), h(n * n, 0.0), x(n);
  for (double& s : scale) s = std::exp(0.5 * rng.Normal());
  scale[3] *= outlier_gain;
  scale[n / 2] *= outlier_gain * 0.7;
  const int samples = 6 * static_cast<int>(n);
  for (int s = 0; s < samples; ++s) {
    double prev = rng.Normal();
    for (int64_t i = 0; i < n; ++i) {
      prev = 0.6 * prev + 0.8 * rng.Normal();
      x[i] = prev * scale[i];
    }
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) h[i * n + j] += x[i] * x[j] / samples;
    }
  }
  return h;
}

TEST(Glvq, HessianObjectiveLowersTheProxyLossOnOutlierActivations) {
  const int64_t rows = 64, cols = 256;
  LlmLikeWeightOptions o;  // the benchmarks' LLM-like source
  o.rows = rows;
  o.cols = cols;
  o.outlier_gain_min = 10;
  o.outlier_gain_max = 100;
  const auto w = MakeLlmLikeWeight(o);
  const auto h = CorrelatedHessian(cols, 8, 30.0);
  const HessianView hv{h.data(), cols};
  quant::QuantizerConfig c = Glvq(2, 8);
  // Weight-MSE objective, measured under the Hessian.
  auto mse = QuantizeWith(c, w, rows, cols);
  std::vector<float> delta(w.size());
  for (size_t i = 0; i < w.size(); ++i) delta[i] = w[i] - mse.dequantized[i];
  auto prepared = PreparedHessian::FromData(h.data(), cols, cols, c.damp);
  ASSERT_TRUE(prepared.ok());
  const double mse_proxy =
      prepared->WeightedSquaredNorm(delta.data(), rows) / prepared->WeightedSquaredNorm(w.data(), rows);
  const double hessian_proxy = QuantizeWith(c, w, rows, cols, &hv).tensor.quality->proxy_loss;
  EXPECT_LT(hessian_proxy, 0.8 * mse_proxy);
}

TEST(Glvq, CrossGroupFeedbackDecodesExactlyAndIsDeterministic) {
  const int64_t rows = 32, cols = 300;
  const auto w = GaussianValues(rows * cols, 12);
  const auto h = CorrelatedHessian(cols, 9, 1.0);
  const HessianView hv{h.data(), cols};
  quant::QuantizerConfig c = Glvq(2, 8);
  c.ldlq = true;
  c.threads = 2;
  const quant::QuantizeResult a = QuantizeWith(c, w, rows, cols, &hv);
  std::vector<float> decoded(rows * cols);
  ASSERT_TRUE(Quantizer::Decode(a.tensor, decoded).ok());
  EXPECT_EQ(decoded, a.dequantized);
  EXPECT_EQ(QuantizeWith(c, w, rows, cols, &hv).tensor, a.tensor);
  EXPECT_LT(a.tensor.quality->proxy_loss, 0.3);
}

TEST(Glvq, ExactSearchIsNeverWorseThanBabai) {
  const int64_t rows = 64, cols = 128;
  LlmLikeWeightOptions o;
  o.rows = rows;
  o.cols = cols;
  const auto w = MakeLlmLikeWeight(o);
  quant::QuantizerConfig c = Glvq(2, 8);
  c.glvq.mu_min = c.glvq.mu_max = 0;
  const double babai = QuantizeWith(c, w, rows, cols).tensor.quality->nmse;
  c.glvq.exact_search = true;
  const double exact = QuantizeWith(c, w, rows, cols).tensor.quality->nmse;
  EXPECT_LT(exact, babai);
}

TEST(Glvq, BadInputsGetClearErrors) {
  auto config_error = [](quant::QuantizerConfig c) {
    auto q = MakeQuantizer(c);
    return q.ok() ? std::string("accepted") : std::string(q.status().message());
  };
  quant::QuantizerConfig c = Glvq(2, 8);
  c.bits = 9;
  EXPECT_NE(config_error(c).find("bits must be within 1..8"), std::string::npos);
  c.bits = 0;
  EXPECT_NE(config_error(c).find("bits must be within 1..8"), std::string::npos);
  c = Glvq(2, 3);
  EXPECT_NE(config_error(c).find("dim must be one of"), std::string::npos);
  c = Glvq(2, 32);
  c.group_size = 16;
  EXPECT_NE(config_error(c).find("larger than the group size"), std::string::npos);
  c = Glvq(2, 8);
  c.glvq.mu_min = 50;
  c.glvq.mu_max = 10;
  EXPECT_NE(config_error(c).find("inverted"), std::string::npos);
  c = Glvq(2.5, 8);
  EXPECT_NE(config_error(c).find("fractional bits"), std::string::npos);

  auto q = *MakeQuantizer(Glvq(2, 8));
  std::vector<float> w(8 * 16, 0.5f);
  w[37] = std::nanf("");
  auto r = q->Quantize("bad", {w.data(), 8, 16}, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("non-finite value"), std::string::npos) << r.status();
  w[37] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(q->Quantize("bad", {w.data(), 8, 16}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  w[37] = 0.25f;
  std::vector<double> h(15 * 15, 0.0);
  HessianView hv{h.data(), 15};
  EXPECT_NE(q->Quantize("bad", {w.data(), 8, 16}, &hv).status().message().find("input columns"),
            std::string::npos);
  h.assign(16 * 16, 0.0);
  hv = {h.data(), 16};
  for (int i = 0; i < 16; ++i) h[i * 16 + i] = 1.0;
  h[1] = 0.5;  // H[0,1] != H[1,0]
  EXPECT_NE(q->Quantize("bad", {w.data(), 8, 16}, &hv).status().message().find("not symmetric"),
            std::string::npos);
  for (int i = 0; i < 16; ++i) h[i * 16 + i] = -1.0;
  h[1] = 0.0;
  EXPECT_EQ(q->Quantize("bad", {w.data(), 8, 16}, &hv).status().code(),
            absl::StatusCode::kInvalidArgument);
  h[0] = 40.0;  // positive mean diagonal, still indefinite after damping
  EXPECT_NE(q->Quantize("bad", {w.data(), 8, 16}, &hv).status().message().find("not positive definite"),
            std::string::npos);
}

TEST(Sdba, RealisedAverageIsExactlyTheTarget) {
  const int64_t rows = 16, cols = 1024;
  LlmLikeWeightOptions o;
  o.rows = rows;
  o.cols = cols;
  const auto w = MakeLlmLikeWeight(o);
  for (double target : {2.0, 3.0, 2.5, 2.25}) {
    quant::QuantizerConfig c = Glvq(target, 8);
    c.sdba = true;
    const quant::QuantizeResult r = QuantizeWith(c, w, rows, cols);
    EXPECT_DOUBLE_EQ(r.accounting.PayloadPerWeight(), target);
    if (target == 2.5) {
      EXPECT_EQ(std::count(r.tensor.bits.begin(), r.tensor.bits.end(), 3), 4);
    }
  }
  quant::QuantizerConfig c = Glvq(2.3, 8);
  c.sdba = true;
  auto q = MakeQuantizer(c);
  ASSERT_TRUE(q.ok());
  auto bad = (*q)->Quantize("x", {w.data(), rows, cols}, nullptr);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("nearest achievable"), std::string::npos) << bad.status();
}

TEST(GlvqGroup, AnalyticGradientMatchesFiniteDifferences) {
  Rng rng(21);
  const int rows = 16, width = 20, d = 8;  // two full vectors and a short one per row
  Eigen::MatrixXd w(rows, width), a(width, width), g(d, d), z(rows, width);
  for (int i = 0; i < w.size(); ++i) w.data()[i] = rng.StudentT(5);
  for (int i = 0; i < a.size(); ++i) a.data()[i] = rng.Normal();
  const Eigen::MatrixXd h = a * a.transpose() / width + Eigen::MatrixXd::Identity(width, width);
  for (int i = 0; i < g.size(); ++i) g.data()[i] = 0.1 * rng.Normal();
  g += 0.3 * Eigen::MatrixXd::Identity(d, d);
  for (int i = 0; i < z.size(); ++i) z.data()[i] = static_cast<double>(rng.Below(4)) - 1.5;
  for (bool identity : {true, false}) {
    cpu::GroupProblem p{&w, &h, identity, nullptr, 2, d, {}};
    const double mu = 20.0;
    const auto at = cpu::EvaluateGroupLoss(p, g, mu, z);
    const double eps = 1e-6;
    for (auto [i, j] : {std::pair{0, 0}, {3, 5}, {7, 2}, {1, 1}}) {
      Eigen::MatrixXd gp = g, gm = g;
      gp(i, j) += eps;
      gm(i, j) -= eps;
      const double numeric = (cpu::EvaluateGroupLoss(p, gp, mu, z).loss -
                              cpu::EvaluateGroupLoss(p, gm, mu, z).loss) / (2 * eps);
      EXPECT_NEAR(at.dg(i, j), numeric, 1e-5 * (1 + std::abs(numeric))) << i << "," << j;
    }
    const double numeric_mu = (cpu::EvaluateGroupLoss(p, g, mu + 1e-5, z).loss -
                               cpu::EvaluateGroupLoss(p, g, mu - 1e-5, z).loss) / 2e-5;
    EXPECT_NEAR(at.dmu, numeric_mu, 1e-5 * (1 + std::abs(numeric_mu)));
  }
}

TEST(SphereDecoder, FindsTheBruteForceClosestPoint) {
  Rng rng(9);
  for (int trial = 0; trial < 50; ++trial) {
    const int k = 4, bits = 2;
    Eigen::MatrixXd g(k, k);
    for (int i = 0; i < k * k; ++i) g.data()[i] = rng.Normal();
    g += 2.0 * Eigen::MatrixXd::Identity(k, k);
    Eigen::VectorXd y(k);
    for (int i = 0; i < k; ++i) y[i] = 3 * rng.Normal();
    cpu::BoxedSphereDecoder dec(g, bits);
    Eigen::VectorXd z = Eigen::VectorXd::Constant(k, 0.5);
    const double got = dec.Solve(y, &z);
    double best = 1e300;
    for (int idx = 0; idx < 256; ++idx) {
      Eigen::VectorXd c(k);
      for (int i = 0; i < k; ++i) c[i] = ((idx >> (2 * i)) & 3) - 1.5;
      best = std::min(best, (y - g * c).squaredNorm());
    }
    ASSERT_NEAR(got, best, 1e-9) << trial;
    ASSERT_NEAR((y - g * z).squaredNorm(), best, 1e-9);
  }
}

}  // namespace
}  // namespace glvq::engine
