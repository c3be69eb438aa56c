// Randomized Hadamard incoherence processing (docs/format.md §4.4–4.5,
// docs/algorithms.md §1.6): the transform is orthogonal for every size, matches
// the format's definition, spreads outliers, and survives the packed
// format for every method.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <vector>

#include "common/base/file_util.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/packed/hadamard.h"
#include "common/packed/packed_model.h"
#include "common/safetensors/writer.h"
#include "common/synthetic/example_model.h"
#include "gmock/gmock.h"
#include "tests/support/test_support.h"
#include "worker/engine/quantizer.h"
#include "worker/engine/rht.h"

namespace glvq {
namespace {

using glvq::testing::LlmLikeValues;

namespace fs = std::filesystem;
using Eigen::MatrixXd;
using quant::Method;
using quant::QuantizeResult;
using quant::QuantizerConfig;
using ::testing::HasSubstr;

// T_n as a dense matrix, built by transforming the identity in one pass
// (element i of the batch is row i of I, so the result is T · I).
MatrixXd DenseTransform(int64_t n, uint64_t seed) {
  std::vector<double> eye(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) eye[i * n + i] = 1.0;
  RandomizedHadamard(n, seed).Apply(eye, n);
  return Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      eye.data(), n, n);
}

// T_n written from docs/format.md §4.5 with dense matrices only.
MatrixXd TransformFromSpec(int64_t n, uint64_t seed) {
  const int64_t m = static_cast<int64_t>(std::bit_floor(static_cast<uint64_t>(n)));
  Rng rng(seed);
  auto signs = [&] {
    Eigen::VectorXd s(n);
    for (int64_t i = 0; i < n; ++i) s[i] = (rng.NextU64() >> 63) ? -1.0 : 1.0;
    return MatrixXd(s.asDiagonal());
  };
  auto window = [&](int64_t first) {
    MatrixXd w = MatrixXd::Identity(n, n);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < m; ++j) {
        const double h = (std::popcount(static_cast<uint64_t>(i & j)) & 1) ? -1.0 : 1.0;
        w(first + i, first + j) = h / std::sqrt(static_cast<double>(m));
      }
    }
    return w;
  };
  const MatrixXd d1 = signs();
  if (m == n) return window(0) * d1;
  const MatrixXd d2 = signs();
  return window(n - m) * d2 * window(0) * d1;
}

std::vector<double> RandomVector(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = rng.Normal();
  return v;
}

TEST(RandomizedHadamard, OrthogonalForEverySizeUpTo300) {
  for (int64_t n = 1; n <= 300; ++n) {
    const MatrixXd t = DenseTransform(n, 1000 + n);
    const double err = (t * t.transpose() - MatrixXd::Identity(n, n)).cwiseAbs().maxCoeff();
    ASSERT_LT(err, 1e-12) << "n = " << n;
  }
}

TEST(RandomizedHadamard, OrthogonalForLargeSizes) {
  for (int64_t n : {688, 1024}) {
    const MatrixXd t = DenseTransform(n, 7);
    EXPECT_LT((t * t.transpose() - MatrixXd::Identity(n, n)).cwiseAbs().maxCoeff(), 1e-12)
        << "n = " << n;
  }
  // 4096 (and a ragged 5000): a full Gram matrix costs 10^11 flops, so
  // check Tᵀ T R = R on a random 16-dimensional subspace with the explicit
  // matrix instead.
  for (int64_t n : {4096, 5000}) {
    const MatrixXd t = DenseTransform(n, 8);
    const MatrixXd r = MatrixXd::Random(n, 16);
    EXPECT_LT((t.transpose() * (t * r) - r).cwiseAbs().maxCoeff(), 1e-12) << "n = " << n;
    EXPECT_LT((t * (t.transpose() * r) - r).cwiseAbs().maxCoeff(), 1e-12) << "n = " << n;
  }
}

TEST(RandomizedHadamard, MatchesTheFormatDefinition) {
  for (int64_t n : {1, 2, 3, 5, 8, 12, 64, 100, 172, 256, 300}) {
    const MatrixXd fast = DenseTransform(n, 42 + n);
    EXPECT_LT((fast - TransformFromSpec(n, 42 + n)).cwiseAbs().maxCoeff(), 1e-14) << "n = " << n;
  }
  // A power of two is exactly H_n · diag(s) / √n.
  const MatrixXd t = DenseTransform(16, 3);
  Rng rng(3);
  for (int64_t j = 0; j < 16; ++j) {
    const double s = (rng.NextU64() >> 63) ? -1.0 : 1.0;
    for (int64_t i = 0; i < 16; ++i) {
      const double h = (std::popcount(static_cast<uint64_t>(i & j)) & 1) ? -1.0 : 1.0;
      EXPECT_EQ(t(i, j), h * s / 4.0);
    }
  }
}

TEST(RandomizedHadamard, SingleVectorsAndBatchesAgree) {
  const int64_t n = 172;
  const RandomizedHadamard t(n, 5);
  const MatrixXd dense = DenseTransform(n, 5);
  std::vector<double> x = RandomVector(n, 6);
  const Eigen::VectorXd expected = dense * Eigen::Map<Eigen::VectorXd>(x.data(), n);
  t.Apply(x);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(x[i], expected[i], 1e-13);
}

TEST(RandomizedHadamard, InverseUndoesTheTransform) {
  for (int64_t n : {1, 7, 172, 688, 1024, 11008}) {
    const std::vector<double> x = RandomVector(n, 9);
    std::vector<double> y = x;
    const RandomizedHadamard t(n, 10);
    t.Apply(y);
    t.ApplyInverse(y);
    double err = 0;
    for (int64_t i = 0; i < n; ++i) err = std::max(err, std::fabs(y[i] - x[i]));
    EXPECT_LT(err, 1e-13) << "n = " << n;
  }
  // Both sides of a matrix.
  const int64_t rows = 44, cols = 172;
  const std::vector<double> w = RandomVector(rows * cols, 11);
  std::vector<double> v = w;
  RhtForward(v, rows, cols, {12, 13});
  EXPECT_NE(v, w);
  RhtInverse(v, rows, cols, {12, 13});
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(v[i], w[i], 1e-13);
}

TEST(RandomizedHadamard, DeterministicBySeed) {
  const std::vector<double> x = RandomVector(300, 14);
  auto transformed = [&](uint64_t seed) {
    std::vector<double> y = x;
    RandomizedHadamard(300, seed).Apply(y);
    return y;
  };
  EXPECT_EQ(transformed(15), transformed(15));
  EXPECT_NE(transformed(15), transformed(16));
  const RhtSeeds a = engine::DeriveRhtSeeds(17);
  EXPECT_EQ(a.row, engine::DeriveRhtSeeds(17).row);
  EXPECT_NE(a.row, a.col);
  EXPECT_NE(a.row, engine::DeriveRhtSeeds(18).row);
}

// max |W_ij| / RMS(W): QuIP#'s incoherence of a matrix.
double Incoherence(const std::vector<double>& w) {
  double max = 0, sum2 = 0;
  for (double v : w) {
    max = std::max(max, std::fabs(v));
    sum2 += v * v;
  }
  return max / std::sqrt(sum2 / static_cast<double>(w.size()));
}

// Student-t entries with row and column scales, outlier input channels
// (×20) and a few huge single entries (×100).
std::vector<double> OutlierMatrix(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> col_scale(static_cast<size_t>(cols)), row_scale(static_cast<size_t>(rows));
  for (double& s : col_scale) s = std::exp(0.3 * rng.Normal());
  for (double& s : row_scale) s = std::exp(0.2 * rng.Normal());
  for (int64_t k = 0; k < std::max<int64_t>(2, cols / 100); ++k) {
    col_scale[rng.Below(static_cast<uint64_t>(cols))] *= 20;
  }
  std::vector<double> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      w[r * cols + c] = rng.StudentT(5) * row_scale[r] * col_scale[c];
    }
  }
  for (int k = 0; k < 8; ++k) w[rng.Below(w.size())] *= 100;
  return w;
}

TEST(RandomizedHadamard, SpreadsOutliers) {
  const int64_t rows = 256;
  for (int64_t cols : {128, 172, 256, 688, 1024}) {
    double before = 0, after = 0;
    const int trials = 4;
    for (int t = 0; t < trials; ++t) {
      std::vector<double> w = OutlierMatrix(rows, cols, 100 + t);
      before += Incoherence(w) / trials;
      RhtForward(w, rows, cols, engine::DeriveRhtSeeds(200 + t));
      after += Incoherence(w) / trials;
    }
    std::printf("[measured] incoherence max|W|/rms, %ld x %ld outlier matrix: %.1f -> %.2f\n",
                static_cast<long>(rows), static_cast<long>(cols), before, after);
    EXPECT_GT(before, 30.0);
    EXPECT_LT(after, 7.0) << "cols = " << cols;
  }
}

// ---------------------------------------------------------------------------
// Engine integration and the packed format


QuantizeResult QuantizeWith(const QuantizerConfig& c, const std::vector<float>& w, int64_t rows,
                            int64_t cols, const std::string& name = "layers.0.mlp.weight") {
  auto q = engine::MakeQuantizer(c);
  EXPECT_TRUE(q.ok()) << q.status();
  auto r = (*q)->Quantize(name, {w.data(), rows, cols}, nullptr);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

QuantizerConfig Config(Method method, bool rht) {
  QuantizerConfig c;
  c.method = method;
  c.bits = 2;
  c.dim = method == Method::kGlvq ? 8 : 1;
  c.rht = rht;
  c.seed = 21;
  return c;
}

// Writes `w` as a one-tensor source model and the packed model of `qt`.
absl::StatusOr<PackedModel> PackOne(const fs::path& dir, const QuantizedTensor& qt,
                                    const std::vector<float>& w) {
  const std::vector<TensorToWrite> source = {
      {qt.name, DType::kF32, {qt.rows, qt.cols}, std::as_bytes(std::span<const float>(w))}};
  fs::create_directories(dir / "source");
  RETURN_IF_ERROR(WriteSafetensorsModel(dir / "source", source));
  ASSIGN_OR_RETURN(SafetensorsModel model, SafetensorsModel::Open(dir / "source"));
  const QuantizationConfig config{.method = qt.method, .bits = 2, .lattice_dim = qt.dim,
                                  .group_size = qt.group_size};
  RETURN_IF_ERROR(WritePackedModel(dir / "packed", model, {&qt, 1}, config));
  return PackedModel::Open(dir / "packed");
}

TEST(RhtEngine, EveryMethodRoundTripsThroughThePackedFormat) {
  const int64_t rows = 64, cols = 172;
  const std::vector<float> w = LlmLikeValues(rows, cols, 22);
  for (Method m : {Method::kGlvq, Method::kRtn, Method::kGptq}) {
    SCOPED_TRACE(quant::MethodName(m));
    const QuantizeResult r = QuantizeWith(Config(m, /*rht=*/true), w, rows, cols);
    ASSERT_TRUE(ValidateQuantizedTensor(r.tensor).ok());
    const RhtSeeds seeds = engine::DeriveRhtSeeds(
        DeriveSeed(21, Fnv1a64(r.tensor.name.data(), r.tensor.name.size())));
    EXPECT_EQ(r.tensor.rht_seed, engine::RhtSeedComponent(seeds));
    std::vector<float> decoded(static_cast<size_t>(rows * cols));
    ASSERT_TRUE(engine::Quantizer::Decode(r.tensor, decoded).ok());
    EXPECT_EQ(decoded, r.dequantized);

    testing::ScratchDir dir;
    absl::StatusOr<PackedModel> model = PackOne(dir.path(), r.tensor, w);
    ASSERT_TRUE(model.ok()) << model.status();
    absl::StatusOr<QuantizedTensor> loaded = model->LoadQuantized(r.tensor.name);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(*loaded, r.tensor);
    absl::StatusOr<std::vector<float>> dense = model->Dequantize(r.tensor.name);
    ASSERT_TRUE(dense.ok()) << dense.status();
    EXPECT_EQ(*dense, r.dequantized);
    const ManifestTensor* entry = model->Find(r.tensor.name);
    ASSERT_NE(entry, nullptr);
    EXPECT_TRUE(entry->components.contains("rht_seed"));
    EXPECT_EQ(entry->components.at("rht_seed").bytes, 16u);
  }
}

TEST(RhtEngine, QualityIsMeasuredOnTheOriginalWeights) {
  const int64_t rows = 64, cols = 172;
  const std::vector<float> w = LlmLikeValues(rows, cols, 23);
  const QuantizeResult r = QuantizeWith(Config(Method::kRtn, true), w, rows, cols);
  double err = 0, ref = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = double(w[i]) - r.dequantized[i];
    err += d * d;
    ref += double(w[i]) * w[i];
  }
  // (The base class rounds ΔW to float, hence the tolerance.)
  EXPECT_NEAR(r.tensor.quality->nmse, err / ref, 1e-6 * err / ref);
  // Without a Hessian the proxy loss is the NMSE, in any basis.
  EXPECT_NEAR(r.tensor.quality->proxy_loss, err / ref, 1e-6 * err / ref);
}

TEST(RhtEngine, HelpsRtnOnOutlierWeights) {
  const int64_t rows = 128, cols = 172;
  const std::vector<double> wd = OutlierMatrix(rows, cols, 24);
  const std::vector<float> w(wd.begin(), wd.end());
  auto nmse = [&](bool rht) {
    return QuantizeWith(Config(Method::kRtn, rht), w, rows, cols).tensor.quality->nmse;
  };
  const double plain = nmse(false), rht = nmse(true);
  std::printf("[measured] RTN 2-bit NMSE on a 128 x 172 outlier matrix: plain %.4f, RHT %.4f\n",
              plain, rht);
  EXPECT_LT(rht, plain);
}

TEST(RhtEngine, RhtSeedCostsExactly128Bits) {
  const int64_t rows = 64, cols = 172;
  const std::vector<float> w = LlmLikeValues(rows, cols, 25);
  const QuantizeResult r = QuantizeWith(Config(Method::kRtn, true), w, rows, cols);
  QuantizedTensor without = r.tensor;
  without.rht_seed.clear();
  const BitsAccounting a = ComputeAccounting(r.tensor), b = ComputeAccounting(without);
  EXPECT_EQ(a.total_bits, b.total_bits + 128);
  EXPECT_EQ(a.payload_bits, b.payload_bits);
  EXPECT_TRUE(QuantizeWith(Config(Method::kRtn, false), w, rows, cols).tensor.rht_seed.empty());
}

TEST(RhtFormat, ComponentsRoundTripAndUnknownOnesAreRejected) {
  const int64_t rows = 64, cols = 172;
  const std::vector<float> w = LlmLikeValues(rows, cols, 26);
  const QuantizedTensor qt = QuantizeWith(Config(Method::kRtn, true), w, rows, cols).tensor;
  EXPECT_EQ(ComponentNames("rtn", true),
            (std::vector<std::string>{"bits", "codes", "offsets", "rht_seed", "scale", "zero"}));
  auto views = glvq::testing::ComponentViews(qt);
  QuantizedTensor meta = qt;
  meta.codes.clear();
  meta.rht_seed.clear();
  absl::StatusOr<QuantizedTensor> back = QuantizedTensorFromComponents(meta, views);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, qt);

  auto unknown = views;
  unknown["permutation"] = views["rht_seed"];
  absl::Status s = QuantizedTensorFromComponents(meta, unknown).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("permutation"));
  auto bad_shape = views;
  bad_shape["rht_seed"].shape = {1, 2};
  EXPECT_EQ(QuantizedTensorFromComponents(meta, bad_shape).status().code(),
            absl::StatusCode::kInvalidArgument);
  QuantizedTensor three = qt;
  three.rht_seed.push_back(1);
  EXPECT_THAT(ValidateQuantizedTensor(three).message(), HasSubstr("rht_seed"));
}

TEST(RhtFormat, ReaderRejectsAnUnknownComponentInTheManifest) {
  const int64_t rows = 64, cols = 172;
  const std::vector<float> w = LlmLikeValues(rows, cols, 27);
  const QuantizedTensor qt = QuantizeWith(Config(Method::kRtn, true), w, rows, cols).tensor;
  testing::ScratchDir dir;
  ASSERT_TRUE(PackOne(dir.path(), qt, w).ok());
  const fs::path manifest = dir / "packed" / "glvq_manifest.json";
  absl::StatusOr<std::string> text = ReadFileToString(manifest);
  ASSERT_TRUE(text.ok());
  // Rename the component in the manifest: a reader that skipped unknown
  // components would decode without the inverse transform.
  std::string edited = *text;
  for (size_t at; (at = edited.find("\"rht_seed\"")) != std::string::npos;) {
    edited.replace(at, 10, "\"rht_sead\"");
  }
  ASSERT_NE(edited, *text);
  testing::WriteFile(manifest, edited);
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir / "packed");
  EXPECT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("expected components"));
}

}  // namespace
}  // namespace glvq
