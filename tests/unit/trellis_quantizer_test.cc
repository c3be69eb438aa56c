// The "trellis" method through the engine and the packed format: the
// issue's Gaussian targets, round trips through the component tensors,
// ragged shapes, determinism, fractional rates by SDBA, Hessian feedback,
// and validation of hostile tensors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/packed/trellis_code.h"
#include "common/packed/trellis_tensor.h"
#include "tests/support/test_support.h"
#include "worker/engine/quantizer.h"

namespace glvq::engine {
namespace {

using glvq::testing::GaussianValues;
using ::testing::HasSubstr;

quant::QuantizerConfig Trellis(double bits, int window = 12) {
  quant::QuantizerConfig c;
  c.method = quant::Method::kTrellis;
  c.bits = bits;
  c.trellis.window = window;
  return c;
}

quant::QuantizeResult Quantize(const quant::QuantizerConfig& c, const std::vector<float>& w, int64_t rows,
                        int64_t cols, const HessianView* h = nullptr) {
  auto q = MakeQuantizer(c);
  EXPECT_TRUE(q.ok()) << q.status();
  auto r = (*q)->Quantize("trellis.weight", {w.data(), rows, cols}, h);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

// Targets on i.i.d. N(0, 1) (rate–distortion limits 0.0625 / 0.0156):
// 2 bits ≤ 0.072 needs L ≥ 14, L = 12 gives ≈ 0.073 (the default: 4× faster).
TEST(TrellisQuantizer, GaussianMseNearTheRateDistortionLimit) {
  const int64_t rows = 32, cols = 1024;
  const auto w = GaussianValues(rows * cols, 11);
  EXPECT_LT(Quantize(Trellis(2, 12), w, rows, cols).tensor.quality->nmse, 0.0745);
  EXPECT_LT(Quantize(Trellis(3, 12), w, rows, cols).tensor.quality->nmse, 0.0192);
  const quant::QuantizeResult two = Quantize(Trellis(2, 12), w, rows, cols);
  EXPECT_DOUBLE_EQ(two.accounting.PayloadPerWeight(), 2.0);
  // Side information on 32 rows: a gain per row (32 bits / 1024 columns),
  // per group, bits and offsets per group, rht_seed: 0.0625 bits.
  EXPECT_NEAR(two.accounting.TotalPerWeight(), 2.0625, 1e-9);
}

TEST(TrellisQuantizer, RoundTripsThroughTheComponentsAndIsDeterministic) {
  const int64_t rows = 24, cols = 300;  // ragged: a 44-column last group
  const auto w = glvq::testing::LlmLikeValues(rows, cols, 12);
  const quant::QuantizeResult a = Quantize(Trellis(2, 8), w, rows, cols);
  const quant::QuantizeResult b = Quantize(Trellis(2, 8), w, rows, cols);
  EXPECT_EQ(a.tensor, b.tensor);
  const QuantizedTensor& qt = a.tensor;
  EXPECT_EQ(qt.method, "trellis");
  EXPECT_EQ(qt.dim, 8);
  EXPECT_EQ(ComponentNames("trellis", true),
            (std::vector<std::string>{"bits", "codes", "offsets", "rht_seed", "row_scale",
                                      "scale"}));
  const auto views = glvq::testing::ComponentViews(qt);
  QuantizedTensor meta = qt;
  meta.codes.clear();
  auto back = QuantizedTensorFromComponents(meta, views);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, qt);
  std::vector<float> dense(static_cast<size_t>(rows * cols));
  ASSERT_TRUE(DequantizeRef(*back, dense).ok());
  EXPECT_EQ(dense, a.dequantized);
  EXPECT_EQ(a.tensor.offsets.back(), static_cast<int64_t>(a.tensor.codes.size()));
}

TEST(TrellisQuantizer, FractionalRatesBySdbaAreExact) {
  const int64_t rows = 32, cols = 512;
  const auto w = glvq::testing::LlmLikeValues(rows, cols, 13);
  quant::QuantizerConfig c = Trellis(2.5, 8);
  c.sdba = true;
  const quant::QuantizeResult r = Quantize(c, w, rows, cols);
  EXPECT_DOUBLE_EQ(r.accounting.PayloadPerWeight(), 2.5);
  quant::QuantizerConfig no_sdba = Trellis(2.5, 8);
  EXPECT_EQ(MakeQuantizer(no_sdba).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TrellisQuantizer, HessianFeedbackLowersTheProxyLoss) {
  const int64_t rows = 32, cols = 256;
  const auto w = glvq::testing::LlmLikeValues(rows, cols, 14);
  const std::vector<double> h = glvq::testing::CorrelatedHessian(cols, 15);
  const HessianView hv{h.data(), cols};
  quant::QuantizerConfig with = Trellis(2, 8), without = with;
  without.ldlq = false;
  const double fed = Quantize(with, w, rows, cols, &hv).tensor.quality->proxy_loss;
  const double plain = Quantize(without, w, rows, cols, &hv).tensor.quality->proxy_loss;
  EXPECT_LT(fed, 0.9 * plain);
}

// The gain refit keeps the codes and moves only the gains, and never
// raises the Hessian-weighted loss (here it lowers it).
TEST(TrellisQuantizer, RefittedGainsKeepTheCodesAndLowerTheProxyLoss) {
  const int64_t rows = 32, cols = 256;
  const auto w = glvq::testing::LlmLikeValues(rows, cols, 16);
  const std::vector<double> h = glvq::testing::CorrelatedHessian(cols, 17);
  const HessianView hv{h.data(), cols};
  quant::QuantizerConfig with = Trellis(2, 8), without = with;
  without.refit_scales = false;
  const quant::QuantizeResult a = Quantize(with, w, rows, cols, &hv);
  const quant::QuantizeResult b = Quantize(without, w, rows, cols, &hv);
  EXPECT_EQ(a.tensor.codes, b.tensor.codes);
  EXPECT_EQ(a.tensor.bits, b.tensor.bits);
  EXPECT_NE(a.tensor.row_scale, b.tensor.row_scale);
  EXPECT_LT(a.tensor.quality->proxy_loss, 0.99 * b.tensor.quality->proxy_loss);
  // Without a Hessian the refit minimises plain MSE.
  const quant::QuantizeResult c = Quantize(with, w, rows, cols);
  const quant::QuantizeResult d = Quantize(without, w, rows, cols);
  EXPECT_LE(c.tensor.quality->nmse, d.tensor.quality->nmse);
}

// Tiles of R rows: each (tile, group) is one sequence of n_j · width
// weights, row-major, stream after stream (format.md §4.8). Decoded here
// from the definition with the bit-by-bit oracle, against the format's
// decoder; 20 rows in tiles of 8 leave a 4-row last tile.
TEST(TrellisQuantizer, TilesDecodeAsTheFormatDefinesThem) {
  const int64_t rows = 20, cols = 48;
  quant::QuantizerConfig c = Trellis(2, 8);
  c.group_size = 16;
  c.trellis.tile_rows = 8;
  const quant::QuantizeResult r = Quantize(c, GaussianValues(rows * cols, 18), rows, cols);
  const QuantizedTensor& qt = r.tensor;
  ASSERT_EQ(qt.tile_rows, 8);
  ASSERT_TRUE(ValidateQuantizedTensor(qt).ok());
  std::vector<float> expected(static_cast<size_t>(rows * cols));
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    int64_t at = qt.offsets[g];
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
      const int64_t n = std::min<int64_t>(8, rows - r0), length = n * 16;
      std::vector<float> v(static_cast<size_t>(length));
      trellis::DecodeSequenceRef(qt.codes.data() + at, length, 8, 2, 1.0f, v.data());
      at += trellis::StreamBytes(length, 2);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t t = 0; t < 16; ++t) {
          expected[(r0 + i) * cols + g * 16 + t] = TrellisSequenceScale(qt, r0 + i, g) * v[i * 16 + t];
        }
      }
    }
    EXPECT_EQ(at, qt.offsets[g + 1]);
  }
  std::vector<float> decoded(expected.size());  // the codes' values, before the inverse RHT
  DecodeTrellis(qt, decoded);
  EXPECT_EQ(decoded, expected);
  // Through the component tensors and back.
  QuantizedTensor meta = qt;
  meta.codes.clear();
  auto back = QuantizedTensorFromComponents(meta, glvq::testing::ComponentViews(qt));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, qt);
}

// Why tiles exist: a 16-column group coded row by row gives sequences of
// 16 weights, too short for the trellis; 16-row tiles make them 256 long
// at the same bits.
TEST(TrellisQuantizer, TilesLowerTheErrorOfNarrowGroups) {
  const int64_t rows = 64, cols = 256;
  const auto w = GaussianValues(rows * cols, 19);
  quant::QuantizerConfig rows_only = Trellis(2, 10);
  rows_only.group_size = 16;
  rows_only.trellis.tile_rows = 1;
  quant::QuantizerConfig tiled = rows_only;
  tiled.trellis.tile_rows = 16;
  const quant::QuantizeResult a = Quantize(rows_only, w, rows, cols);
  const quant::QuantizeResult b = Quantize(tiled, w, rows, cols);
  EXPECT_EQ(a.accounting.payload_bits, b.accounting.payload_bits);
  EXPECT_LT(b.tensor.quality->nmse, 0.9 * a.tensor.quality->nmse);
}

TEST(TrellisQuantizer, BadConfigurationsAndTensorsGetClearErrors) {
  for (auto [bits, window] : {std::pair{5.0, 12}, {2.0, 7}, {2.0, 17}}) {
    const absl::Status s = MakeQuantizer(Trellis(bits, window)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bits << " " << window;
  }
  const int64_t rows = 8, cols = 64;
  const QuantizedTensor good = Quantize(Trellis(2, 8), GaussianValues(rows * cols, 16), rows, cols).tensor;
  QuantizedTensor five = good, negative = good, no_scale = good, narrow = good;
  narrow.dim = 1;  // a window of 1 bit cannot hold a 2-bit code
  five.bits[0] = 5;
  five.offsets = TrellisGroupOffsets(rows, cols, five.group_size, five.bits);
  five.codes.resize(static_cast<size_t>(five.offsets.back()));
  negative.row_scale[2] = -1;
  no_scale.scale.clear();
  // 60 columns at 3 bits leave 4 padding bits in each row's stream.
  quant::QuantizerConfig by_rows = Trellis(3, 8);
  by_rows.trellis.tile_rows = 1;
  QuantizedTensor three = Quantize(by_rows, GaussianValues(rows * 60, 17), rows, 60).tensor;
  QuantizedTensor retiled = three;
  retiled.tile_rows = 2;  // 360-bit tiles: 180 bytes where 8 rows take 184
  three.codes[static_cast<size_t>(trellis::StreamBytes(60, 3)) - 1] |= 0x80;
  EXPECT_THAT(std::string(ValidateQuantizedTensor(five).message()), HasSubstr("bits"));
  EXPECT_THAT(std::string(ValidateQuantizedTensor(negative).message()), HasSubstr("row_scale"));
  EXPECT_THAT(std::string(ValidateQuantizedTensor(no_scale).message()), HasSubstr("scale"));
  EXPECT_THAT(std::string(ValidateQuantizedTensor(three).message()), HasSubstr("padding"));
  EXPECT_THAT(std::string(ValidateQuantizedTensor(narrow).message()),
              HasSubstr("more than the window"));
  // tile_rows: 1..64, and the offsets must follow it.
  for (int64_t tile : {0, 65}) {
    QuantizedTensor bad = good;
    bad.tile_rows = tile;
    EXPECT_THAT(std::string(ValidateQuantizedTensor(bad).message()), HasSubstr("tile_rows"));
  }
  EXPECT_THAT(std::string(ValidateQuantizedTensor(retiled).message()), HasSubstr("offsets"));
  quant::QuantizerConfig bad_tile = Trellis(2, 8);
  bad_tile.trellis.tile_rows = 3;  // must divide the encoder's 64-row blocks
  EXPECT_EQ(MakeQuantizer(bad_tile).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glvq::engine
