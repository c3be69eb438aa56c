// RTN and GPTQ baselines (docs/algorithms.md §3.1–3.2) against the reference
// figures and the invariants every method must keep.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "common/base/random.h"
#include "common/synthetic/example_model.h"
#include "worker/cpu/scalar_grid.h"
#include "worker/engine/hessian.h"
#include "worker/engine/quantizer.h"
#include "tests/support/test_support.h"

namespace glvq::engine {
namespace {

using glvq::testing::GaussianValues;
using glvq::testing::LlmLikeValues;

using Eigen::MatrixXd;



// H = XᵀX/N of synthetic activations: AR(1) correlation ρ = 0.7 between
// neighbouring channels, log-normal channel scales (spread `log_sigma`) and
// a few outlier channels ×20, as real layer inputs have.
std::vector<double> CorrelatedHessian(int64_t n, uint64_t seed, double log_sigma = 0.3) {
  Rng rng(seed);
  std::vector<double> scale(static_cast<size_t>(n));
  for (double& s : scale) s = std::exp(log_sigma * rng.Normal());
  for (int k = 0; k < 4; ++k) scale[rng.Below(static_cast<uint64_t>(n))] *= 20;
  const int64_t samples = 4 * n;
  const double rho = 0.7;
  MatrixXd x(samples, n);
  for (int64_t s = 0; s < samples; ++s) {
    double prev = rng.Normal();
    for (int64_t c = 0; c < n; ++c) {
      prev = rho * prev + std::sqrt(1 - rho * rho) * rng.Normal();
      x(s, c) = prev * scale[c];
    }
  }
  const MatrixXd h = x.transpose() * x / double(samples);
  std::vector<double> out(static_cast<size_t>(n * n));
  Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(out.data(), n,
                                                                                     n) = h;
  return out;
}

// The paper preset (no RHT): these tests pin the grids themselves.
quant::QuantizerConfig Config(quant::Method method, int bits, quant::RtnVariant variant) {
  quant::QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = method;
  c.bits = bits;
  c.dim = 1;
  c.rtn_variant = variant;
  return c;
}

quant::QuantizeResult QuantizeWith(const quant::QuantizerConfig& c, const std::vector<float>& w, int64_t rows,
                            int64_t cols, const std::vector<double>* h = nullptr) {
  auto q = MakeQuantizer(c);
  EXPECT_TRUE(q.ok()) << q.status();
  const HessianView hv{h ? h->data() : nullptr, cols};
  auto r = (*q)->Quantize("test.weight", {w.data(), rows, cols}, h ? &hv : nullptr);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

// All codes of a tensor, group after group, as cpu::ScalarQuantization lays them out.
std::vector<uint8_t> UnpackedCodes(const QuantizedTensor& t) {
  std::vector<uint8_t> all;
  for (int64_t g = 0; g < t.NumGroups(); ++g) {
    std::vector<uint8_t> group(static_cast<size_t>(t.rows * t.GroupWidth(g)));
    EXPECT_TRUE(UnpackGroupCodes(t, g, group).ok());
    all.insert(all.end(), group.begin(), group.end());
  }
  return all;
}

// Textbook GPTQ, one column at a time with an immediate rank-1 update of all
// later columns: the reference the lazy-batch implementation must match.
std::vector<uint8_t> GptqCodesRef(const quant::QuantizerConfig& c, const std::vector<float>& w,
                                  int64_t rows, int64_t cols, const std::vector<double>& h) {
  auto ph = PreparedHessian::FromData(h.data(), cols, cols, c.damp);
  EXPECT_TRUE(ph.ok()) << ph.status();
  std::vector<int64_t> order(static_cast<size_t>(cols));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (c.act_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return ph->Diagonal(a) > ph->Diagonal(b); });
  }
  const MatrixXd u = ph->InverseCholeskyUpper(order);
  MatrixXd work(rows, cols);  // column k holds original column order[k]
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < cols; ++k) work(r, k) = w[r * cols + order[k]];
  }
  cpu::ScalarQuantization q(rows, cols, c.group_size);
  auto fit = [&](int64_t g, auto value) {
    std::vector<double> row(static_cast<size_t>(q.GroupWidth(g))), diag(row.size());
    for (size_t i = 0; i < row.size(); ++i) diag[i] = ph->Diagonal(g * c.group_size + i);
    for (int64_t r = 0; r < rows; ++r) {
      for (size_t i = 0; i < row.size(); ++i) row[i] = value(r, static_cast<int64_t>(i));
      q.grid(g, r) = cpu::FitScalarGrid(row, diag, static_cast<int>(c.bits), c.rtn_variant);
    }
  };
  for (int64_t g = 0; g < q.num_groups && c.act_order; ++g) {
    fit(g, [&](int64_t r, int64_t i) { return double(w[r * cols + g * c.group_size + i]); });
  }
  for (int64_t k = 0; k < cols; ++k) {
    const int64_t col = order[k], g = col / c.group_size, c0 = g * c.group_size;
    if (!c.act_order && col == c0) fit(g, [&](int64_t r, int64_t i) { return work(r, k + i); });
    for (int64_t r = 0; r < rows; ++r) {
      const cpu::ScalarGrid& grid = q.grid(g, r);
      const uint8_t code = grid.Encode(work(r, k));
      q.code(g, r, col - c0) = code;
      const double e = (work(r, k) - grid.Decode(code)) / u(k, k);
      for (int64_t j = k + 1; j < cols; ++j) work(r, j) -= e * u(k, j);
    }
  }
  return q.codes;
}

TEST(Rtn, GaussianTwoBitMinMax) {
  const int64_t rows = 512, cols = 1024;
  const auto w = GaussianValues(rows * cols, 1);
  const quant::QuantizeResult r =
      QuantizeWith(Config(quant::Method::kRtn, 2, quant::RtnVariant::kMinMax), w, rows, cols);
  std::printf("[measured] RTN min-max 2-bit Gaussian NMSE (groups of 128): %.5f\n",
              r.tensor.quality->nmse);
  EXPECT_NEAR(r.tensor.quality->nmse, 0.25, 0.02);
  EXPECT_DOUBLE_EQ(r.accounting.PayloadPerWeight(), 2.0);
  EXPECT_EQ(r.tensor.method, "rtn");
  EXPECT_EQ(r.tensor.dim, 1);
}

TEST(Rtn, GaussianTwoBitClipSearch) {
  const int64_t rows = 512, cols = 1024;
  const auto w = GaussianValues(rows * cols, 1);
  const quant::QuantizeResult r =
      QuantizeWith(Config(quant::Method::kRtn, 2, quant::RtnVariant::kClipSearch), w, rows, cols);
  std::printf("[measured] RTN clip-search 2-bit Gaussian NMSE (groups of 128): %.5f\n",
              r.tensor.quality->nmse);
  // docs/algorithms.md §3.1 quotes ≈ 0.122, but a per-group search cannot do
  // worse than the best fixed step for N(0,1) (0.1188): a candidate within
  // 1 % of that step is always on the grid, and each group keeps its best
  // candidate, so it even gains from fitting its own sample (0.1156 here).
  EXPECT_NEAR(r.tensor.quality->nmse, 0.116, 0.003);
  EXPECT_LT(r.tensor.quality->nmse, 0.1188);
}

TEST(Rtn, MoreBitsNeverWorse) {
  const int64_t rows = 64, cols = 256;
  const auto w = LlmLikeValues(rows, cols, 2);
  for (quant::RtnVariant v : {quant::RtnVariant::kMinMax, quant::RtnVariant::kClipSearch}) {
    double prev = std::numeric_limits<double>::infinity();
    for (int b = 1; b <= 8; ++b) {
      const double nmse =
          QuantizeWith(Config(quant::Method::kRtn, b, v), w, rows, cols).tensor.quality->nmse;
      std::printf("[measured] RTN %s %d-bit LLM-like NMSE: %.6f\n",
                  v == quant::RtnVariant::kMinMax ? "min-max" : "clip-search", b, nmse);
      EXPECT_LT(nmse, prev) << "bits " << b;
      prev = nmse;
    }
  }
}

TEST(Rtn, ConstantRowGroupsAreReproduced) {
  const int64_t rows = 4, cols = 40;
  std::vector<float> w(rows * cols);
  for (int64_t c = 0; c < cols; ++c) {
    w[0 * cols + c] = 0.0f;
    w[1 * cols + c] = 0.37f;
    w[2 * cols + c] = -2.5f;
    w[3 * cols + c] = 1e-30f;
  }
  for (quant::RtnVariant v : {quant::RtnVariant::kMinMax, quant::RtnVariant::kClipSearch}) {
    for (int b : {1, 2, 4, 8}) {
      quant::QuantizerConfig c = Config(quant::Method::kRtn, b, v);
      c.group_size = 16;
      const quant::QuantizeResult r = QuantizeWith(c, w, rows, cols);
      for (float s : r.tensor.scale) EXPECT_GT(s, 0.0f);
      for (int64_t i = 0; i < rows * cols; ++i) {
        EXPECT_NEAR(r.dequantized[i], w[i], 1e-6 * std::abs(w[i])) << "bits " << b << " at " << i;
      }
      EXPECT_LT(r.tensor.quality->nmse, 1e-12);
    }
  }
}

TEST(Baselines, RaggedShapesRoundTripExactly) {
  const int64_t rows = 13, cols = 172;
  const auto w = GaussianValues(rows * cols, 3);
  const auto h = CorrelatedHessian(cols, 3);
  for (quant::Method m : {quant::Method::kRtn, quant::Method::kGptq}) {
    for (quant::RtnVariant v : {quant::RtnVariant::kMinMax, quant::RtnVariant::kClipSearch}) {
      const quant::QuantizeResult r = QuantizeWith(Config(m, 3, v), w, rows, cols, &h);
      ASSERT_EQ(r.tensor.NumGroups(), 2);
      EXPECT_EQ(r.tensor.GroupWidth(1), 44);
      EXPECT_EQ(r.tensor.scale.size(), 2u * rows);
      std::vector<float> decoded(rows * cols);
      ASSERT_TRUE(Quantizer::Decode(r.tensor, decoded).ok());
      EXPECT_EQ(decoded, r.dequantized);
      // GPTQ trades weight error for proxy loss, so only the latter is small.
      EXPECT_LT(r.tensor.quality->proxy_loss, 0.1);
    }
  }
}

TEST(Baselines, IdenticalForAnyThreadCount) {
  const int64_t rows = 150, cols = 300;  // several row tasks and groups
  const auto w = LlmLikeValues(rows, cols, 4);
  const auto h = CorrelatedHessian(cols, 4);
  for (quant::Method m : {quant::Method::kRtn, quant::Method::kGptq}) {
    for (bool act_order : {false, true}) {
      if (m == quant::Method::kRtn && act_order) continue;
      quant::QuantizerConfig c = Config(m, 2, quant::RtnVariant::kClipSearch);
      c.act_order = act_order;
      c.threads = 1;
      const quant::QuantizeResult one = QuantizeWith(c, w, rows, cols, &h);
      c.threads = 3;
      const quant::QuantizeResult three = QuantizeWith(c, w, rows, cols, &h);
      EXPECT_EQ(one.tensor, three.tensor) << quant::MethodName(m) << " act_order " << act_order;
      EXPECT_EQ(QuantizeWith(c, w, rows, cols, &h).tensor, three.tensor) << "and from run to run";
    }
  }
}

TEST(Gptq, IdentityHessianGivesRtn) {
  const int64_t rows = 70, cols = 300;
  const auto w = LlmLikeValues(rows, cols, 5);
  std::vector<double> identity(cols * cols, 0.0);
  for (int64_t i = 0; i < cols; ++i) identity[i * cols + i] = 1.0;
  for (quant::RtnVariant v : {quant::RtnVariant::kMinMax, quant::RtnVariant::kClipSearch}) {
    quant::QuantizerConfig c = Config(quant::Method::kRtn, 2, v);
    const quant::QuantizeResult rtn = QuantizeWith(c, w, rows, cols);
    c.method = quant::Method::kGptq;
    EXPECT_EQ(QuantizeWith(c, w, rows, cols).tensor, rtn.tensor);
    // An explicit identity is damped to (1 + damp)·I: still no feedback.
    const quant::QuantizeResult explicit_identity = QuantizeWith(c, w, rows, cols, &identity);
    EXPECT_EQ(UnpackedCodes(explicit_identity.tensor), UnpackedCodes(rtn.tensor));
    EXPECT_EQ(explicit_identity.tensor.scale, rtn.tensor.scale);
  }
}

TEST(Gptq, BeatsRtnOnCorrelatedHessian) {
  const int64_t rows = 128, cols = 512;
  const auto w = LlmLikeValues(rows, cols, 6);
  const auto h = CorrelatedHessian(cols, 6);
  for (quant::RtnVariant v : {quant::RtnVariant::kMinMax, quant::RtnVariant::kClipSearch}) {
    for (int b : {2, 3, 4}) {
      const double rtn =
          QuantizeWith(Config(quant::Method::kRtn, b, v), w, rows, cols, &h).tensor.quality->proxy_loss;
      const double gptq =
          QuantizeWith(Config(quant::Method::kGptq, b, v), w, rows, cols, &h).tensor.quality->proxy_loss;
      std::printf("[measured] %s %d-bit proxy loss: RTN %.5f GPTQ %.5f\n",
                  v == quant::RtnVariant::kMinMax ? "min-max" : "clip-search", b, rtn, gptq);
      EXPECT_LT(gptq, 0.8 * rtn) << "bits " << b;
    }
  }
}

TEST(Gptq, LazyBatchesMatchPerColumnUpdates) {
  struct Case {
    int64_t rows, cols;
    int group_size;
    bool act_order;
  };
  // 300 columns: three batches, a ragged last group; group 96 forces batches
  // to end at group starts; group 256 spans two batches.
  for (const Case& k :
       {Case{20, 300, 128, false}, Case{20, 300, 96, false}, Case{20, 300, 256, false},
        Case{20, 300, 32, false}, Case{20, 300, 128, true}, Case{70, 172, 96, true}}) {
    const auto w = LlmLikeValues(k.rows, k.cols, 7);
    const auto h = CorrelatedHessian(k.cols, 7, 1.0);
    for (quant::RtnVariant v : {quant::RtnVariant::kMinMax, quant::RtnVariant::kClipSearch}) {
      quant::QuantizerConfig c = Config(quant::Method::kGptq, 2, v);
      c.group_size = k.group_size;
      c.act_order = k.act_order;
      const quant::QuantizeResult r = QuantizeWith(c, w, k.rows, k.cols, &h);
      EXPECT_EQ(UnpackedCodes(r.tensor), GptqCodesRef(c, w, k.rows, k.cols, h))
          << "group " << k.group_size << " act_order " << k.act_order;
    }
  }
}

TEST(Gptq, ActOrderHelpsOnStronglyVaryingDiagonal) {
  const int64_t rows = 128, cols = 512;
  const auto w = LlmLikeValues(rows, cols, 8);
  const auto h = CorrelatedHessian(cols, 8, 1.5);
  for (quant::RtnVariant v : {quant::RtnVariant::kMinMax, quant::RtnVariant::kClipSearch}) {
    quant::QuantizerConfig c = Config(quant::Method::kGptq, 2, v);
    const double plain = QuantizeWith(c, w, rows, cols, &h).tensor.quality->proxy_loss;
    c.act_order = true;
    const double act = QuantizeWith(c, w, rows, cols, &h).tensor.quality->proxy_loss;
    std::printf("[measured] GPTQ %s 2-bit proxy loss: plain %.5f act-order %.5f\n",
                v == quant::RtnVariant::kMinMax ? "min-max" : "clip-search", plain, act);
    EXPECT_LE(act, plain);
  }
}

TEST(Baselines, RejectsBadInputs) {
  const int64_t rows = 8, cols = 16;
  const auto w = GaussianValues(rows * cols, 9);
  std::vector<double> nan_h(cols * cols, 0.0), bad_size((cols + 1) * (cols + 1), 0.0);
  std::vector<double> asym(cols * cols, 0.0), neg(cols * cols, 0.0);
  for (int64_t i = 0; i < cols; ++i) {
    nan_h[i * cols + i] = asym[i * cols + i] = 1.0;
    neg[i * cols + i] = -1.0;
  }
  for (int64_t i = 0; i <= cols; ++i) bad_size[i * (cols + 1) + i] = 1.0;
  nan_h[3] = std::numeric_limits<double>::quiet_NaN();
  asym[1] = 0.5;
  std::vector<float> nan_w = w;
  nan_w[17] = std::numeric_limits<float>::quiet_NaN();

  for (quant::Method m : {quant::Method::kRtn, quant::Method::kGptq}) {
    auto q = MakeQuantizer(Config(m, 2, quant::RtnVariant::kClipSearch));
    ASSERT_TRUE(q.ok()) << q.status();
    const MatrixView good{w.data(), rows, cols};
    for (const HessianView& hv :
         {HessianView{nan_h.data(), cols}, HessianView{bad_size.data(), cols + 1},
          HessianView{asym.data(), cols}, HessianView{neg.data(), cols}}) {
      EXPECT_EQ((*q)->Quantize("x", good, &hv).status().code(), absl::StatusCode::kInvalidArgument);
    }
    EXPECT_EQ((*q)->Quantize("x", {nan_w.data(), rows, cols}, nullptr).status().code(),
              absl::StatusCode::kInvalidArgument);
    quant::QuantizerConfig fractional = Config(m, 2, quant::RtnVariant::kMinMax);
    fractional.bits = 2.5;
    EXPECT_EQ(MakeQuantizer(fractional).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace glvq::engine
