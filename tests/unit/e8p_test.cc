// E8P (docs/algorithms.md §3.3, docs/format.md §4.3): the codebook's structure,
// the fast nearest-codeword search against brute force, the Gaussian MSE
// reference figure, and the quantizer through the packed format.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>
#include <vector>

#include "common/base/file_util.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/packed/e8p.h"
#include "common/packed/packed_model.h"
#include "common/safetensors/writer.h"
#include "common/synthetic/example_model.h"
#include "gmock/gmock.h"
#include "tests/support/test_support.h"
#include "worker/cpu/e8p_codebook.h"
#include "worker/cpu/e8p_quantizer.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {

using glvq::testing::LlmLikeValues;

namespace fs = std::filesystem;
using cpu::E8pCodebook;
using cpu::E8pCoordinate;
using cpu::E8pNearestOf;
using cpu::E8pTables;
using quant::Method;
using quant::QuantizeResult;
using quant::QuantizerConfig;
using ::testing::HasSubstr;

using Vec8 = std::array<double, e8p::kDim>;

// ---------------------------------------------------------------------------
// Codebook

TEST(E8pCodebook, AbsTableHasQuipSharpStructure) {
  const auto& table = e8p::AbsTable();
  std::set<e8p::DoubledAbs> distinct(table.begin(), table.end());
  EXPECT_EQ(distinct.size(), 256u);
  int norm10 = 0, norm12 = 0;
  for (int a = 0; a < 256; ++a) {
    int norm2 = 0, halves = 0, three_halves = 0;  // doubled: 4‖a‖²
    for (int8_t v : table[a]) {
      EXPECT_TRUE(v == 1 || v == 3 || v == 5);
      norm2 += v * v;
      halves += v == 1;
      three_halves += v == 3;
    }
    if (a < 227) {
      EXPECT_LE(norm2, 40) << a;
      ++norm10;
    } else {
      EXPECT_EQ(norm2, 48) << a;
      EXPECT_EQ(halves, 3);
      EXPECT_EQ(three_halves, 5);
      ++norm12;
    }
  }
  EXPECT_EQ(norm10, 227);
  EXPECT_EQ(norm12, 29);
  // Lexicographic order of the first part: all ½ first, then the last
  // coordinate grows.
  EXPECT_EQ(table[0], (e8p::DoubledAbs{1, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(table[1], (e8p::DoubledAbs{1, 1, 1, 1, 1, 1, 1, 3}));
  EXPECT_EQ(table[227], (e8p::DoubledAbs{3, 1, 1, 1, 3, 3, 3, 3}));
  EXPECT_EQ(table[255], (e8p::DoubledAbs{3, 3, 1, 1, 3, 3, 3, 1}));
}

TEST(E8pCodebook, AllCodewordsDistinctAndInE8PlusQuarter) {
  std::set<Vec8> distinct;
  for (int index = 0; index < (1 << 16); ++index) {
    const Vec8 c = e8p::Codeword(static_cast<uint16_t>(index));
    distinct.insert(c);
    // y = c − ¼·1 must be in E8: all integers or all half-integers, even sum.
    double sum = 0;
    int integers = 0;
    for (double ci : c) {
      const double y = ci - 0.25;
      ASSERT_EQ(2 * y, std::round(2 * y)) << index;
      integers += y == std::round(y);
      sum += y;
    }
    ASSERT_TRUE(integers == 0 || integers == 8) << index;
    ASSERT_EQ(std::fmod(sum, 2.0), 0.0) << index;
  }
  EXPECT_EQ(distinct.size(), 65536u);
}

TEST(E8pCodebook, IndexLayoutFollowsTheSpec) {
  // Index 0: abs vector 0 (all ½, Σ = 4 even), no sign bits, shift −¼.
  EXPECT_EQ(e8p::Codeword(0), (Vec8{0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25}));
  // Bit 15: +¼. Bit 8 negates coordinate 1, and the odd count then
  // negates coordinate 0 as well.
  EXPECT_EQ(e8p::Codeword(0x8000), (Vec8{0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75}));
  EXPECT_EQ(e8p::Codeword(0x0100),
            (Vec8{-0.75, -0.75, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25}));
  // Abs vector 1 = (½,…,½,3/2) has Σ = 5, odd: coordinate 0 is negated
  // when no other sign is.
  EXPECT_EQ(e8p::Codeword(0x0001), (Vec8{-0.75, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 1.25}));
  // Bit 14 negates coordinate 7.
  EXPECT_EQ(e8p::Codeword(0x4001), (Vec8{0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, -1.75}));
}

double Distance(const double* x, const Vec8& c, int k) {
  double d = 0;
  for (int i = 0; i < k; ++i) d += (x[i] - c[i]) * (x[i] - c[i]);
  return d;
}

TEST(E8pCodebook, NearestMatchesBruteForce) {
  const E8pCodebook& cb = E8pCodebook::Get();
  Rng rng(1);
  int mismatched_index = 0;
  for (int t = 0; t < 10000; ++t) {
    // Mostly the codebook's working range, sometimes far outside it.
    const double spread = t % 10 == 0 ? 4.0 : 1.03;
    double x[8];
    for (double& v : x) v = spread * rng.Normal();
    const int k = t < 9000 ? 8 : 1 + t % 8;  // ragged vectors use k < 8
    const uint16_t fast = cb.Nearest(x, k), brute = cb.NearestBruteForce(x, k);
    ASSERT_NEAR(Distance(x, cb.Codeword(fast), k), Distance(x, cb.Codeword(brute), k), 1e-12)
        << "vector " << t << " k " << k;
    mismatched_index += fast != brute;
  }
  // Equal distances with different indices only happen for ragged vectors
  // (coordinates beyond k are free).
  EXPECT_LE(mismatched_index, 1000);
}

// The CUDA engine's copy of the search (e8p_search.h, device-safe) is the
// CPU's, index for index, and decodes as e8p::Codeword.
TEST(E8pCodebook, DeviceSafeSearchEqualsTheCodebook) {
  const E8pCodebook& cb = E8pCodebook::Get();
  const E8pTables tables = cb.tables();
  Rng rng(2);
  for (int t = 0; t < 20000; ++t) {
    const double spread = t % 10 == 0 ? 4.0 : 1.03;
    double x[8];
    for (double& v : x) v = spread * rng.Normal();
    const int k = t < 16000 ? 8 : 1 + t % 8;
    const uint16_t index = E8pNearestOf(tables, x, k);
    ASSERT_EQ(index, cb.Nearest(x, k)) << "vector " << t << " k " << k;
    const auto codeword = e8p::Codeword(index);
    for (int i = 0; i < 8; ++i) ASSERT_EQ(E8pCoordinate(tables, index, i), codeword[i]);
  }
}

TEST(E8pCodebook, GaussianMseAtTheBestScale) {
  const E8pCodebook& cb = E8pCodebook::Get();
  const int vectors = 200000;
  Rng rng(2);
  std::vector<double> x(static_cast<size_t>(vectors) * 8);
  for (double& v : x) v = rng.Normal();
  auto mse = [&](double scale) {
    double err = 0;
    for (int t = 0; t < vectors; ++t) {
      double y[8];
      for (int i = 0; i < 8; ++i) y[i] = scale * x[t * 8 + i];
      const Vec8& c = cb.Codeword(cb.Nearest(y));
      for (int i = 0; i < 8; ++i) err += std::pow(x[t * 8 + i] - c[i] / scale, 2);
    }
    return err / (8.0 * vectors);
  };
  const double at_default = mse(cpu::kE8pGaussianScale);
  std::printf("[measured] E8P Gaussian MSE per dimension at scale %.2f: %.5f\n",
              cpu::kE8pGaussianScale, at_default);
  EXPECT_NEAR(at_default, 0.0917, 0.003);
  double best = at_default, best_scale = cpu::kE8pGaussianScale;
  for (double s = 0.95; s <= 1.111; s += 0.02) {
    const double m = mse(s);
    std::printf("[measured]   scale %.2f: %.5f\n", s, m);
    if (m < best) best = m, best_scale = s;
  }
  EXPECT_NEAR(best_scale, cpu::kE8pGaussianScale, 0.04);
  EXPECT_GT(best, 0.0625);  // rate–distortion limit at 2 bits
}

// ---------------------------------------------------------------------------
// Quantizer


// As in baselines_test: H = XᵀX/N of AR(1)-correlated activations with
// log-normal channel scales and a few ×20 outlier channels.
std::vector<double> CorrelatedHessian(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> scale(static_cast<size_t>(n));
  for (double& s : scale) s = std::exp(0.3 * rng.Normal());
  for (int k = 0; k < 4; ++k) scale[rng.Below(static_cast<uint64_t>(n))] *= 20;
  const int64_t samples = 4 * n;
  const double rho = 0.7;
  Eigen::MatrixXd x(samples, n);
  for (int64_t s = 0; s < samples; ++s) {
    double prev = rng.Normal();
    for (int64_t c = 0; c < n; ++c) {
      prev = rho * prev + std::sqrt(1 - rho * rho) * rng.Normal();
      x(s, c) = prev * scale[c];
    }
  }
  const Eigen::MatrixXd h = x.transpose() * x / double(samples);
  std::vector<double> out(static_cast<size_t>(n * n));
  Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      out.data(), n, n) = h;
  return out;
}

QuantizerConfig E8pConfig() {
  QuantizerConfig c;
  c.method = Method::kE8p;
  c.bits = 2;
  c.dim = 8;
  c.seed = 5;
  return c;
}

QuantizeResult RunQuantizer(const engine::Quantizer& q, const std::vector<float>& w, int64_t rows,
                   int64_t cols, const std::vector<double>* h = nullptr) {
  const engine::HessianView hv{h ? h->data() : nullptr, cols};
  auto r = q.Quantize("layers.0.mlp.down_proj.weight", {w.data(), rows, cols}, h ? &hv : nullptr);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

QuantizeResult QuantizeWith(const QuantizerConfig& c, const std::vector<float>& w, int64_t rows,
                            int64_t cols, const std::vector<double>* h = nullptr) {
  auto q = engine::MakeQuantizer(c);
  EXPECT_TRUE(q.ok()) << q.status();
  return RunQuantizer(**q, w, rows, cols, h);
}

absl::Status PackOne(const fs::path& dir, const QuantizedTensor& qt, const std::vector<float>& w) {
  const std::vector<TensorToWrite> source = {
      {qt.name, DType::kF32, {qt.rows, qt.cols}, std::as_bytes(std::span<const float>(w))}};
  fs::create_directories(dir / "source");
  RETURN_IF_ERROR(WriteSafetensorsModel(dir / "source", source));
  ASSIGN_OR_RETURN(SafetensorsModel model, SafetensorsModel::Open(dir / "source"));
  const QuantizationConfig config{.method = "e8p", .bits = 2, .lattice_dim = 8,
                                  .group_size = qt.group_size, .parameters = {}};
  return WritePackedModel(dir / "packed", model, {&qt, 1}, config);
}

TEST(E8pQuantizer, RaggedWeightRoundTripsThroughThePackedFormat) {
  const int64_t rows = 64, cols = 172;  // groups of 128 and 44 = 5·8 + 4 columns
  const std::vector<float> w = LlmLikeValues(rows, cols, 3);
  const QuantizeResult r = QuantizeWith(E8pConfig(), w, rows, cols);
  const QuantizedTensor& t = r.tensor;
  ASSERT_TRUE(ValidateQuantizedTensor(t).ok());
  EXPECT_EQ(t.method, "e8p");
  EXPECT_EQ(t.dim, 8);
  EXPECT_EQ(t.bits, (std::vector<uint8_t>{2, 2}));
  EXPECT_EQ(t.offsets, (std::vector<int64_t>{0, 64 * 16 * 2, 64 * 16 * 2 + 64 * 6 * 2}));
  EXPECT_EQ(t.rht_seed.size(), 2u);  // RHT is forced on
  EXPECT_EQ(t.scale.size(), 2u);
  // 16 bits per codeword, the ragged ones included; bits 2 + offsets 24 +
  // scale 8 + rht_seed 16 bytes of side information.
  EXPECT_EQ(r.accounting.payload_bits, 64u * 22u * 16u);
  EXPECT_EQ(r.accounting.total_bits, 8u * (64u * 22u * 2u + 2u + 24u + 8u + 16u));
  std::printf("[measured] E8P on a 64 x 172 LLM-like weight: NMSE %.4f, %.4f bits/weight total\n",
              t.quality->nmse, r.accounting.TotalPerWeight());
  EXPECT_LT(t.quality->nmse, 0.15);

  testing::ScratchDir dir;
  ASSERT_TRUE(PackOne(dir.path(), t, w).ok());
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir / "packed");
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<QuantizedTensor> loaded = model->LoadQuantized(t.name);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, t);
  absl::StatusOr<std::vector<float>> dense = model->Dequantize(t.name);
  ASSERT_TRUE(dense.ok()) << dense.status();
  EXPECT_EQ(*dense, r.dequantized);
  EXPECT_EQ(model->Find(t.name)->accounting, r.accounting);
}

// Decodes Ŵ̃ (the tensor without its RHT) element by element from the spec.
TEST(E8pQuantizer, CodesDecodeAsTheSpecSays) {
  const int64_t rows = 9, cols = 172;
  const std::vector<float> w = LlmLikeValues(rows, cols, 4);
  QuantizedTensor t = QuantizeWith(E8pConfig(), w, rows, cols).tensor;
  t.rht_seed.clear();
  std::vector<float> ref(static_cast<size_t>(rows * cols));
  ASSERT_TRUE(DequantizeRef(t, ref).ok());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t col = 0; col < cols; ++col) {
      const int64_t g = col / 128, c = col % 128, width = std::min<int64_t>(128, cols - g * 128);
      const int64_t per_row = (width + 7) / 8, k = t.offsets[g] + 2 * (r * per_row + c / 8);
      const uint16_t index = static_cast<uint16_t>(t.codes[k] | (t.codes[k + 1] << 8));
      const int i = static_cast<int>(c % 8);
      const e8p::DoubledAbs& a = e8p::AbsTable()[index & 0xFF];
      int sum = 0;
      for (int8_t v : a) sum += v;
      const int flips = std::popcount(static_cast<unsigned>((index >> 8) & 0x7F));
      const bool negate = i == 0 ? ((flips + sum / 2) % 2 == 1) : ((index >> (7 + i)) & 1);
      const double value = (negate ? -a[i] : a[i]) / 2.0 + ((index >> 15) ? 0.25 : -0.25);
      ASSERT_EQ(ref[r * cols + col], static_cast<float>(double(t.scale[g]) * value))
          << r << ", " << col;
    }
  }
}

TEST(E8pQuantizer, SameSeedSameBytes) {
  const int64_t rows = 100, cols = 172;  // two row tasks
  const std::vector<float> w = LlmLikeValues(rows, cols, 6);
  const std::vector<double> h = CorrelatedHessian(cols, 6);
  QuantizerConfig c = E8pConfig();
  c.threads = 1;
  const QuantizeResult a = QuantizeWith(c, w, rows, cols, &h);
  c.threads = 3;
  const QuantizeResult b = QuantizeWith(c, w, rows, cols, &h);
  EXPECT_EQ(a.tensor, b.tensor);
  EXPECT_EQ(a.dequantized, b.dequantized);
  testing::ScratchDir dir;
  ASSERT_TRUE(PackOne(dir / "a", a.tensor, w).ok());
  ASSERT_TRUE(PackOne(dir / "b", b.tensor, w).ok());
  for (const char* file : {"model.safetensors", "glvq_manifest.json", "config.json"}) {
    EXPECT_EQ(ReadFileToString(dir / "a" / "packed" / file).value_or("a"),
              ReadFileToString(dir / "b" / "packed" / file).value_or("b"))
        << file;
  }
  c.seed = 6;
  EXPECT_NE(QuantizeWith(c, w, rows, cols, &h).tensor.codes, a.tensor.codes);
}

TEST(E8pQuantizer, GaussianWeightsReachTheCodebookMse) {
  const int64_t rows = 256, cols = 1024;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  Rng rng(7);
  for (float& v : w) v = static_cast<float>(rng.Normal());
  const QuantizeResult r = QuantizeWith(E8pConfig(), w, rows, cols);
  std::printf("[measured] E8P 2-bit NMSE on i.i.d. Gaussian 256 x 1024 weights: %.5f\n",
              r.tensor.quality->nmse);
  EXPECT_NEAR(r.tensor.quality->nmse, 0.0917, 0.004);
}

TEST(E8pQuantizer, BlockLdlqLowersProxyLoss) {
  const int64_t rows = 128, cols = 512;
  const std::vector<float> w = LlmLikeValues(rows, cols, 8);
  const std::vector<double> h = CorrelatedHessian(cols, 8);
  const QuantizerConfig c = E8pConfig();
  const double ldlq =
      RunQuantizer(*cpu::MakeE8pQuantizer(c), w, rows, cols, &h).tensor.quality->proxy_loss;
  const double plain =
      RunQuantizer(*cpu::MakeE8pQuantizer(c, {.block_ldlq = false}), w, rows, cols, &h)
          .tensor.quality->proxy_loss;
  QuantizerConfig rtn;
  rtn.method = Method::kRtn;
  rtn.bits = 2;
  rtn.dim = 1;
  const double rtn_loss = QuantizeWith(rtn, w, rows, cols, &h).tensor.quality->proxy_loss;
  QuantizerConfig gptq = rtn;
  gptq.method = Method::kGptq;
  const double gptq_loss = QuantizeWith(gptq, w, rows, cols, &h).tensor.quality->proxy_loss;
  gptq.rht = true;  // for the record: how much of E8P's gain is RHT + feedback
  const double gptq_rht = QuantizeWith(gptq, w, rows, cols, &h).tensor.quality->proxy_loss;
  std::printf("[measured] 2-bit proxy loss, 128 x 512 LLM-like, correlated H: RTN %.5f, "
              "GPTQ %.5f, GPTQ+RHT %.5f, E8P without BlockLDLQ %.5f, E8P %.5f\n",
              rtn_loss, gptq_loss, gptq_rht, plain, ldlq);
  EXPECT_LT(ldlq, plain);
  EXPECT_LT(ldlq, rtn_loss);
  EXPECT_LT(ldlq, gptq_loss);
}

// docs/format.md §12.1, built by hand.
TEST(E8pFormat, WorkedExample) {
  QuantizedTensor t;
  t.name = "e.weight";
  t.method = "e8p";
  t.rows = 2;
  t.cols = 10;
  t.group_size = 8;
  t.dim = 8;
  t.bits = {2, 2};
  t.scale = {0.5f, 2.0f};
  const std::vector<uint16_t> codes = {0x0100, 0x8000, 0x8001, 0x0000};
  ASSERT_TRUE(PackE8pCodes(codes, &t).ok());
  EXPECT_EQ(t.offsets, (std::vector<int64_t>{0, 4, 8}));
  EXPECT_EQ(t.codes, (std::vector<uint8_t>{0x00, 0x01, 0x00, 0x80, 0x01, 0x80, 0x00, 0x00}));
  std::vector<float> out(20);
  ASSERT_TRUE(DequantizeRef(t, out).ok());
  EXPECT_EQ(out, (std::vector<float>{-0.375f, -0.375f, 0.125f, 0.125f, 0.125f, 0.125f, 0.125f,
                                     0.125f, -0.5f, 1.5f, 0.375f, 0.375f, 0.375f, 0.375f, 0.375f,
                                     0.375f, 0.375f, 0.375f, 0.5f, 0.5f}));
  t.rht_seed = {1, 2};
  ASSERT_TRUE(DequantizeRef(t, out).ok());
  const std::vector<float> rotated = {
      -0.618718445f, -0.265165031f, 0.441941738f,  0.795495152f,  0.618718445f,
      0.265165031f,  -0.795495152f, 0.265165031f,  -0.25f,        -0.5f,
      0.0441941731f, 0.0656407848f, 0.220970869f,  0.242417485f,  -0.0441941731f,
      -0.0656407848f, 0.309359223f, -1.12630093f,  0.125f,        0.5f};
  EXPECT_EQ(out, rotated);
  const BitsAccounting acc = ComputeAccounting(t);
  EXPECT_EQ(acc.payload_bits, 64u);
  EXPECT_EQ(acc.total_bits, 464u);
}

TEST(E8pFormat, InvalidTensorsAreRejected) {
  const std::vector<float> w = LlmLikeValues(16, 172, 9);
  const QuantizedTensor good = QuantizeWith(E8pConfig(), w, 16, 172).tensor;
  ASSERT_TRUE(ValidateQuantizedTensor(good).ok());
  struct Case {
    const char* label;
    void (*corrupt)(QuantizedTensor&);
    const char* message;
  };
  const Case cases[] = {
      {"bits 3", [](QuantizedTensor& q) { q.bits[1] = 3; }, "e8p has exactly 2"},
      {"dim 4", [](QuantizedTensor& q) { q.dim = 4; }, "dim must be 8"},
      {"offsets", [](QuantizedTensor& q) { q.offsets[1] -= 2; }, "offsets[1]"},
      {"short codes", [](QuantizedTensor& q) { q.codes.resize(q.codes.size() - 2); }, "codes has"},
      {"scale", [](QuantizedTensor& q) { q.scale[0] = 0; }, "scale[0]"},
      {"generators", [](QuantizedTensor& q) { q.generators = {1.0f}; }, "generators has"},
  };
  for (const Case& c : cases) {
    QuantizedTensor bad = good;
    c.corrupt(bad);
    const absl::Status s = ValidateQuantizedTensor(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.label;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.label;
  }
  std::vector<uint8_t> unpacked(16 * 128);
  EXPECT_EQ(UnpackGroupCodes(good, 0, unpacked).code(), absl::StatusCode::kInvalidArgument);
}

TEST(E8pConfig, ValidationAndForcedRht) {
  QuantizerConfig c = E8pConfig();
  c.bits = 3;
  EXPECT_EQ(engine::MakeQuantizer(c).status().code(), absl::StatusCode::kInvalidArgument);
  c = E8pConfig();
  c.group_size = 100;
  EXPECT_EQ(engine::MakeQuantizer(c).status().code(), absl::StatusCode::kInvalidArgument);
  c = E8pConfig();
  c.rht = false;
  auto q = engine::MakeQuantizer(c);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE((*q)->config().rht);
}

}  // namespace
}  // namespace glvq
