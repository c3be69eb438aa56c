// The PVQ quantizer (docs/algorithms.md §2) and its packed form
// (docs/format.md §4.7): Gaussian MSE at ≈2 bits against the reference
// figures, fractional rates, bit accounting, exact decoding from the packed
// form, determinism, Hessian feedback, and invalid tensors and configs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "common/base/file_util.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "common/packed/pvq.h"
#include "common/packed/pvq_tensor.h"
#include "common/safetensors/writer.h"
#include "gmock/gmock.h"
#include "tests/support/test_support.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {

namespace fs = std::filesystem;
using quant::Method;
using quant::QuantizeResult;
using quant::QuantizerConfig;
using glvq::testing::GaussianValues;
using glvq::testing::LlmLikeValues;
using ::testing::HasSubstr;

QuantizerConfig PvqConfig(double bits, int dim) {
  QuantizerConfig c;
  c.method = Method::kPvq;
  c.bits = bits;
  c.dim = dim;
  c.group_size = std::max(128, dim);
  c.seed = 3;
  return c;
}

QuantizeResult QuantizeWith(const QuantizerConfig& c, const std::vector<float>& w, int64_t rows,
                            int64_t cols, const std::vector<double>* h = nullptr) {
  auto q = engine::MakeQuantizer(c);
  EXPECT_TRUE(q.ok()) << q.status();
  const engine::HessianView hv{h ? h->data() : nullptr, cols};
  auto r = (*q)->Quantize("layers.0.mlp.up_proj.weight", {w.data(), rows, cols},
                          h ? &hv : nullptr);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

// ---------------------------------------------------------------------------
// Gaussian MSE at ≈2 bits per weight

struct Reference {
  int dim;
  double mse;  // docs/algorithms.md §2
};
constexpr Reference kReferences[] = {{8, 0.164}, {16, 0.129}, {32, 0.116}, {64, 0.113},
                                     {128, 0.106}};

// 4096·D i.i.d. N(0, 1) weights in rows of 1024.
double GaussianNmse(const QuantizerConfig& c, double* payload_per_weight) {
  const int64_t cols = 1024, rows = 4 * c.dim;
  const std::vector<float> w = GaussianValues(rows * cols, 17 + c.dim);
  const QuantizeResult r = QuantizeWith(c, w, rows, cols);
  *payload_per_weight = r.accounting.PayloadPerWeight();
  return r.tensor.quality->nmse;
}

// The figures come from spending log2(D) + 1 bits on the gain (docs/engine.md).
TEST(PvqQuantizer, GaussianMseReproducesTheReferenceFigures) {
  for (const Reference& ref : kReferences) {
    QuantizerConfig c = PvqConfig(2, ref.dim);
    c.pvq.gain_bits = std::bit_width(static_cast<unsigned>(ref.dim));  // log2 D + 1
    double bits = 0;
    const double mse = GaussianNmse(c, &bits);
    std::printf("[measured] PVQ D=%d gain bits %d: %.3f bits/weight, MSE %.4f (reference %.3f)\n",
                ref.dim, c.pvq.gain_bits, bits, mse, ref.mse);
    EXPECT_NEAR(mse, ref.mse, 0.05 * ref.mse) << "D=" << ref.dim;
    EXPECT_LE(bits, 2.0) << "D=" << ref.dim;
    EXPECT_GT(bits, 2.0 - 1.0 / ref.dim - 1e-12) << "D=" << ref.dim;
  }
}

TEST(PvqQuantizer, DefaultSplitIsAtLeastAsGoodAsTheReference) {
  for (const Reference& ref : kReferences) {
    double bits = 0;
    const double mse = GaussianNmse(PvqConfig(2, ref.dim), &bits);
    std::printf("[measured] PVQ D=%d default split: %.3f bits/weight, MSE %.4f\n", ref.dim, bits,
                mse);
    EXPECT_LT(mse, ref.mse * 1.02) << "D=" << ref.dim;
    EXPECT_LE(bits, 2.0);
    EXPECT_GT(mse, 0.0625);  // the rate–distortion limit at 2 bits
  }
}

TEST(PvqQuantizer, FractionalRatesStayBelowTheTarget) {
  const int64_t rows = 32, cols = 512;
  const std::vector<float> w = LlmLikeValues(rows, cols, 5);
  double previous = INFINITY;
  for (double bits : {1.5, 2.0, 2.5, 3.0, 3.5, 4.0}) {
    const QuantizeResult r = QuantizeWith(PvqConfig(bits, 16), w, rows, cols);
    const double payload = r.accounting.PayloadPerWeight();
    EXPECT_LE(payload, bits);
    EXPECT_GT(payload, bits - 1.0 / 16 - 1e-12);  // within one bit per vector
    EXPECT_LT(r.tensor.quality->nmse, previous) << bits;
    previous = r.tensor.quality->nmse;
  }
}

// ---------------------------------------------------------------------------
// Packed form

absl::Status PackOne(const fs::path& dir, const QuantizedTensor& qt, const std::vector<float>& w) {
  const std::vector<TensorToWrite> source = {
      {qt.name, DType::kF32, {qt.rows, qt.cols}, std::as_bytes(std::span<const float>(w))}};
  fs::create_directories(dir / "source");
  RETURN_IF_ERROR(WriteSafetensorsModel(dir / "source", source));
  ASSIGN_OR_RETURN(SafetensorsModel model, SafetensorsModel::Open(dir / "source"));
  const QuantizationConfig config{.method = "pvq", .bits = 2.5, .lattice_dim = qt.dim,
                                  .group_size = qt.group_size, .parameters = {}};
  return WritePackedModel(dir / "packed", model, {&qt, 1}, config);
}

TEST(PvqQuantizer, RaggedWeightRoundTripsExactlyThroughThePackedFormat) {
  // Groups of 64 and 44 columns: D = 16 gives 4 vectors, then 2 + a short 12.
  const int64_t rows = 70, cols = 108;
  const std::vector<float> w = LlmLikeValues(rows, cols, 6);
  QuantizerConfig c = PvqConfig(2.5, 16);
  c.group_size = 64;
  const QuantizeResult r = QuantizeWith(c, w, rows, cols);
  const QuantizedTensor& t = r.tensor;
  ASSERT_TRUE(ValidateQuantizedTensor(t).ok());
  EXPECT_EQ(t.method, "pvq");
  EXPECT_EQ(t.dim, 16);
  EXPECT_EQ(t.rht_seed.size(), 2u);  // RHT is forced on
  // Whole vectors in both groups, the short one (12 columns) in group 1.
  ASSERT_EQ(t.pulses.size(), 4u);
  EXPECT_EQ(t.pulses[0], t.pulses[2]);
  EXPECT_EQ(t.pulses[1], 0);
  EXPECT_GT(t.pulses[3], 0);
  EXPECT_EQ(t.norms.size(), static_cast<size_t>(rows));
  EXPECT_EQ(PvqGainRows(t), 2);
  const int gain_bits = PvqGainBits(t);
  ASSERT_GE(gain_bits, 0);
  EXPECT_EQ(t.gains.size(), 2u << gain_bits);
  const uint64_t whole =
      static_cast<uint64_t>(pvq::CountPyramid(16, t.pulses[0])->index_bits + gain_bits);
  const uint64_t part =
      static_cast<uint64_t>(pvq::CountPyramid(12, t.pulses[3])->index_bits + gain_bits);
  EXPECT_LE(whole, 40u);  // 2.5 bits · 16
  EXPECT_LE(part, 30u);   // 2.5 bits · 12
  EXPECT_EQ(r.accounting.payload_bits, rows * (6 * whole + part));
  EXPECT_LE(r.accounting.PayloadPerWeight(), 2.5);
  const uint64_t group0 = (rows * 4 * whole + 7) / 8;
  const uint64_t code_bytes = group0 + (rows * (2 * whole + part) + 7) / 8;
  EXPECT_EQ(t.offsets, (std::vector<int64_t>{0, static_cast<int64_t>(group0),
                                             static_cast<int64_t>(code_bytes)}));
  // codes, offsets 24, pulses 16, gains, norms, rht_seed 16 bytes.
  EXPECT_EQ(r.accounting.total_bits,
            8 * (code_bytes + 24 + 16 + 4 * t.gains.size() + 4 * rows + 16));
  std::printf("[measured] PVQ D=16 at 2.5 bits on a 70 x 108 LLM-like weight: K=%d, K'=%d, %d "
              "gain bits, NMSE %.4f\n", t.pulses[0], t.pulses[3], gain_bits, t.quality->nmse);
  EXPECT_LT(t.quality->nmse, 0.08);

  // Through the component tensors and a whole packed model, bit for bit.
  std::map<std::string, TensorView, std::less<>> components;
  const std::vector<TensorToWrite> parts = ComponentTensors(t);
  for (const TensorToWrite& p : parts) {
    components[p.name.substr(p.name.rfind('.') + 1)] = {p.dtype, p.shape, p.data};
  }
  EXPECT_THAT(ComponentNames("pvq", true),
              ::testing::ElementsAre("codes", "gains", "norms", "offsets", "pulses", "rht_seed"));
  auto rebuilt = QuantizedTensorFromComponents(t, components);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_EQ(*rebuilt, t);
  testing::ScratchDir dir;
  ASSERT_TRUE(PackOne(dir.path(), t, w).ok());
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir / "packed");
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<std::vector<float>> dense = model->Dequantize(t.name);
  ASSERT_TRUE(dense.ok()) << dense.status();
  EXPECT_EQ(*dense, r.dequantized);
  EXPECT_EQ(model->Find(t.name)->accounting, r.accounting);
}

// Decodes Ŵ̃ (without the RHT) record by record from the spec.
TEST(PvqQuantizer, RecordsDecodeAsTheSpecSays) {
  const int64_t rows = 5, cols = 40;  // D = 16: vectors of 16, 16 and a short 8
  const std::vector<float> w = LlmLikeValues(rows, cols, 7);
  QuantizedTensor t = QuantizeWith(PvqConfig(3, 16), w, rows, cols).tensor;
  t.rht_seed.clear();
  std::vector<float> ref(static_cast<size_t>(rows * cols));
  ASSERT_TRUE(DequantizeRef(t, ref).ok());
  auto whole = pvq::Enumeration::Create(16, t.pulses[0]);
  auto part = pvq::Enumeration::Create(8, t.pulses[1]);
  ASSERT_TRUE(whole.ok() && part.ok());
  const int gain_bits = PvqGainBits(t);
  const size_t levels = size_t{1} << gain_bits;
  ASSERT_EQ(t.gains.size(), 2 * levels);
  const uint64_t row_bits =
      static_cast<uint64_t>(2 * (whole->index_bits() + gain_bits) + part->index_bits() + gain_bits);
  auto bits = [&](uint64_t pos, int n, uint64_t* out) {
    for (int b = 0; b < n; ++b) {
      const uint64_t bit = pos + static_cast<uint64_t>(b);
      out[b / 64] |= static_cast<uint64_t>((t.codes[bit / 8] >> (bit % 8)) & 1) << (b % 64);
    }
  };
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t pos = static_cast<uint64_t>(r) * row_bits;
    for (int64_t v = 0; v < 3; ++v) {
      const pvq::Enumeration& e = v < 2 ? *whole : *part;
      uint64_t index[pvq::kMaxIndexWords] = {}, code = 0;
      bits(pos, e.index_bits(), index);
      bits(pos + static_cast<uint64_t>(e.index_bits()), gain_bits, &code);
      pos += static_cast<uint64_t>(e.index_bits() + gain_bits);
      std::vector<int32_t> y(static_cast<size_t>(e.dim()));
      e.Decode(index, y.data());
      double yy = 0;
      for (int32_t c : y) yy += double(c) * c;
      const float gain = t.gains[(v < 2 ? 0 : levels) + code];
      const double f = double(t.norms[r]) * double(gain) / std::sqrt(yy);
      for (int i = 0; i < e.dim(); ++i) {
        ASSERT_EQ(ref[r * cols + 16 * v + i], static_cast<float>(f * y[i])) << r << ", " << v;
      }
    }
  }
}

// docs/format.md §12.2, built by hand.
TEST(PvqFormat, WorkedExample) {
  QuantizedTensor t;
  t.name = "p.weight";
  t.method = "pvq";
  t.rows = 2;
  t.cols = 5;
  t.group_size = 4;
  t.dim = 2;
  t.pulses = {2, 0, 0, 1};
  t.gains = {0.5f, 1.0f, 0.25f, 0.75f};
  t.norms = {2.0f, 4.0f};
  PvqCodes codes;
  codes.indices = {2, 7, 0, 5, 0, 1};
  codes.gain_codes = {1, 0, 0, 1, 1, 0};
  ASSERT_TRUE(PackPvqCodes(codes, &t).ok());
  EXPECT_EQ(t.offsets, (std::vector<int64_t>{0, 2, 3}));
  EXPECT_EQ(t.codes, (std::vector<uint8_t>{0x7A, 0xD0, 0x06}));
  ASSERT_TRUE(ValidateQuantizedTensor(t).ok());
  std::vector<float> out(10);
  ASSERT_TRUE(DequantizeRef(t, out).ok());
  const float r2 = static_cast<float>(std::sqrt(2.0)), r8 = static_cast<float>(std::sqrt(8.0));
  EXPECT_EQ(out, (std::vector<float>{r2, r2, -1, 0, 1.5f, 0, 2, -r8, -r8, -1}));
  const BitsAccounting acc = ComputeAccounting(t);
  EXPECT_EQ(acc.payload_bits, 20u);
  EXPECT_EQ(acc.total_bits, 536u);
}

TEST(PvqQuantizer, SameSeedSameBytesWhateverTheThreads) {
  const int64_t rows = 100, cols = 256;  // two row tasks
  const std::vector<float> w = LlmLikeValues(rows, cols, 8);
  QuantizerConfig c = PvqConfig(2, 32);
  c.threads = 1;
  const QuantizeResult a = QuantizeWith(c, w, rows, cols);
  c.threads = 3;
  const QuantizeResult b = QuantizeWith(c, w, rows, cols);
  EXPECT_EQ(a.tensor, b.tensor);
  EXPECT_EQ(a.dequantized, b.dequantized);
  c.seed = 4;
  EXPECT_NE(QuantizeWith(c, w, rows, cols).tensor.codes, a.tensor.codes);
}

// H = XᵀX/N of AR(1)-correlated activations with a few outlier channels.
std::vector<double> CorrelatedHessian(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> scale(static_cast<size_t>(n));
  for (double& s : scale) s = std::exp(0.3 * rng.Normal());
  for (int k = 0; k < 4; ++k) scale[rng.Below(static_cast<uint64_t>(n))] *= 20;
  const int64_t samples = 4 * n;
  std::vector<double> h(static_cast<size_t>(n * n), 0.0), x(static_cast<size_t>(n));
  for (int64_t s = 0; s < samples; ++s) {
    double prev = rng.Normal();
    for (int64_t c = 0; c < n; ++c) {
      prev = 0.7 * prev + std::sqrt(1 - 0.49) * rng.Normal();
      x[c] = prev * scale[c];
    }
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) h[i * n + j] += x[i] * x[j] / double(samples);
    }
  }
  return h;
}

TEST(PvqQuantizer, BlockLdlqLowersProxyLoss) {
  const int64_t rows = 96, cols = 256;
  const std::vector<float> w = LlmLikeValues(rows, cols, 9);
  const std::vector<double> h = CorrelatedHessian(cols, 9);
  const QuantizerConfig c = PvqConfig(2, 16);
  const QuantizeResult plain = QuantizeWith(c, w, rows, cols);  // weight MSE objective
  const QuantizeResult fed = QuantizeWith(c, w, rows, cols, &h);
  // Measure the plain result under H too.
  double err = 0, ref = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        const double hij = h[i * cols + j];
        err += (w[r * cols + i] - plain.dequantized[r * cols + i]) *
               (w[r * cols + j] - plain.dequantized[r * cols + j]) * hij;
        ref += double(w[r * cols + i]) * w[r * cols + j] * hij;
      }
    }
  }
  const double plain_proxy = err / ref;
  std::printf("[measured] PVQ D=16 2 bits, 96 x 256 LLM-like, correlated H: proxy loss %.5f "
              "without feedback, %.5f with BlockLDLQ\n", plain_proxy, fed.tensor.quality->proxy_loss);
  EXPECT_LT(fed.tensor.quality->proxy_loss, 0.8 * plain_proxy);
}

// ---------------------------------------------------------------------------
// Invalid tensors and configurations

TEST(PvqFormat, InvalidTensorsAreRejected) {
  // 1.875 bits at D = 8: 15-bit records, so 6 · 5 records leave 6 padding bits.
  const QuantizedTensor good =
      QuantizeWith(PvqConfig(1.875, 8), LlmLikeValues(6, 40, 10), 6, 40).tensor;
  ASSERT_TRUE(ValidateQuantizedTensor(good).ok());
  ASSERT_EQ(good.codes.size(), 57u);
  struct Case {
    const char* label;
    void (*corrupt)(QuantizedTensor&);
    const char* message;
  };
  const Case cases[] = {
      {"pulses 0", [](QuantizedTensor& q) { q.pulses[0] = 0; }, "pulses K must be within"},
      {"short pulses", [](QuantizedTensor& q) { q.pulses[1] = 3; }, "no short vector"},
      {"pulses size", [](QuantizedTensor& q) { q.pulses.pop_back(); }, "pulses has"},
      {"pulses beyond 512 bits",
       [](QuantizedTensor& q) {
         q.dim = q.cols = q.group_size = 256;
         q.pulses[0] = 4000;
       },
       "more than 512 bits"},
      {"gains 3", [](QuantizedTensor& q) { q.gains.resize(3); }, "power of two"},
      {"gains 512", [](QuantizedTensor& q) { q.gains.resize(512); }, "power of two"},
      {"gain NaN", [](QuantizedTensor& q) { q.gains[0] = NAN; }, "gains[0]"},
      {"norm < 0", [](QuantizedTensor& q) { q.norms[2] = -1; }, "norms[2]"},
      {"norms size", [](QuantizedTensor& q) { q.norms.pop_back(); }, "norms has"},
      {"bits", [](QuantizedTensor& q) { q.bits = {2}; }, "bits has"},
      {"dim 0", [](QuantizedTensor& q) { q.dim = 0; }, "dim must be in 1..256"},
      {"offsets", [](QuantizedTensor& q) { q.offsets[1] += 1; }, "offsets[1]"},
      {"padding", [](QuantizedTensor& q) { q.codes.back() |= 0x80; }, "padding bits"},
      {"index beyond N",
       [](QuantizedTensor& q) {
         const int bits = pvq::CountPyramid(8, q.pulses[0])->index_bits;
         for (int b = 0; b < bits; ++b) q.codes[b / 8] |= static_cast<uint8_t>(1 << (b % 8));
       },
       "beyond N(D, K)"},
  };
  for (const Case& c : cases) {
    QuantizedTensor bad = good;
    c.corrupt(bad);
    const absl::Status s = ValidateQuantizedTensor(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.label;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.label;
    std::vector<float> out(static_cast<size_t>(bad.rows * bad.cols));
    EXPECT_FALSE(DequantizeRef(bad, out).ok()) << c.label;
  }
}

TEST(PvqConfig, BadConfigurationsAreRejectedClearly) {
  struct Case {
    const char* label;
    void (*set)(QuantizerConfig&);
    const char* message;
  };
  const Case cases[] = {
      {"D = 0", [](QuantizerConfig& c) { c.dim = 0; }, "pvq dim D must be within 2..256"},
      {"D = 512", [](QuantizerConfig& c) { c.dim = 512; c.group_size = 512; },
       "pvq dim D must be within 2..256"},
      {"group", [](QuantizerConfig& c) { c.group_size = 100; }, "multiple of D"},
      {"gain bits 9", [](QuantizerConfig& c) { c.pvq.gain_bits = 9; }, "gain bits"},
      {"unreachable", [](QuantizerConfig& c) { c.dim = 4; c.bits = 1; c.pvq.gain_bits = 2; },
       "rate unreachable"},
      {"beyond bounds", [](QuantizerConfig& c) { c.dim = 128; c.bits = 5; },
       "beyond its bounds"},
  };
  for (const Case& k : cases) {
    QuantizerConfig c = PvqConfig(2, 8);
    k.set(c);
    const absl::Status s = engine::MakeQuantizer(c).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << k.label;
    EXPECT_THAT(s.message(), HasSubstr(k.message)) << k.label;
  }
  QuantizerConfig c = PvqConfig(1.7, 10);  // fractional bits and any D are fine
  c.group_size = 40;
  c.rht = false;
  auto q = engine::MakeQuantizer(c);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE((*q)->config().rht);
  EXPECT_EQ(quant::ParseMethod("pvq"), Method::kPvq);
  EXPECT_STREQ(quant::MethodName(Method::kPvq), "pvq");
}

}  // namespace
}  // namespace glvq
