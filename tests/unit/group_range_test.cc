// Ranges of column groups (worker/engine/group_range.h) and their assembly
// (coordinator/assembler.h): a tensor quantized in ranges and put together
// is byte for byte the tensor quantized at once.
#include <gtest/gtest.h>

#include <vector>

#include "common/base/random.h"
#include "common/safetensors/reader.h"
#include "common/safetensors/writer.h"
#include "coordinator/assembler.h"
#include "tests/support/test_support.h"
#include "worker/engine/group_range.h"
#include "worker/engine/hessian.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {

using coordinator::AssembleTensor;
using coordinator::TensorPart;
using quant::QuantizeResult;
using quant::QuantizerConfig;

constexpr int64_t kRows = 12, kCols = 100;  // group size 16: 7 groups, the last 4 wide

std::vector<float> Weights(uint64_t seed) {
  Rng rng(seed);
  std::vector<float> w(static_cast<size_t>(kRows * kCols));
  for (float& x : w) x = static_cast<float>(rng.Normal() * (rng.Uniform() < 0.02 ? 8 : 1));
  return w;
}

// A random SPD matrix with uneven diagonal, so that a block's own mean
// diagonal differs from the whole one's.
std::vector<double> Hessian(uint64_t seed) {
  Rng rng(seed);
  const int64_t n = kCols, k = 2 * kCols;
  std::vector<double> x(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < k; ++j) x[i * k + j] = rng.Normal() * double(1 + i % 7);
  }
  std::vector<double> h(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t t = 0; t < k; ++t) s += x[i * k + t] * x[j * k + t];
      h[i * n + j] = s / double(k);
    }
  }
  return h;
}

// The paper preset: no RHT and no row gains, so that tensors can be split.
QuantizerConfig Config(quant::Method method) {
  QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = method;
  c.bits = method == quant::Method::kRtn ? 3 : 2;
  c.dim = method == quant::Method::kRtn ? 1 : 4;
  c.group_size = 16;
  c.glvq.max_iters = 3;
  c.glvq.refine_steps = 3;
  c.damp = 0.05;
  return c;
}

std::vector<float> Columns(const std::vector<float>& w, quant::ColumnSpan s) {
  std::vector<float> out;
  for (int64_t r = 0; r < kRows; ++r) {
    out.insert(out.end(), w.begin() + r * kCols + s.begin, w.begin() + r * kCols + s.end);
  }
  return out;
}

std::vector<double> Block(const std::vector<double>& h, quant::ColumnSpan s) {
  std::vector<double> out;
  for (int64_t r = s.begin; r < s.end; ++r) {
    out.insert(out.end(), h.begin() + r * kCols + s.begin, h.begin() + r * kCols + s.end);
  }
  return out;
}

// Quantizes the ranges {first, count} separately and assembles them.
QuantizedTensor Split(const QuantizerConfig& c, const std::vector<float>& w,
                      const std::vector<double>* h,
                      const std::vector<std::pair<int, int>>& ranges) {
  auto q = engine::MakeQuantizer(c);
  EXPECT_TRUE(q.ok()) << q.status();
  const double mean = h ? engine::MeanDiagonal(h->data(), kCols, kCols + 1) : 0;
  std::vector<TensorPart> parts;
  for (auto [first, count] : ranges) {
    const quant::ColumnSpan span = *quant::GroupColumns(kCols, c.group_size, first, count);
    const std::vector<float> cols = Columns(w, span);
    const std::vector<double> block = h ? Block(*h, span) : std::vector<double>{};
    auto r = engine::QuantizeRange(
        **q, {"layer.weight", {cols.data(), kRows, span.width()}, h ? block.data() : nullptr,
              mean});
    EXPECT_TRUE(r.ok()) << r.status();
    parts.push_back({static_cast<uint32_t>(first), std::move(r->result.tensor), r->sums});
  }
  auto t = AssembleTensor(std::move(parts), kCols);
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

QuantizeResult Whole(const QuantizerConfig& c, const std::vector<float>& w,
                     const std::vector<double>* h) {
  auto q = engine::MakeQuantizer(c);
  const engine::HessianView hv{h ? h->data() : nullptr, kCols};
  auto r = (*q)->Quantize("layer.weight", {w.data(), kRows, kCols}, h ? &hv : nullptr);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

// Every packed field equal; quality equal up to summation order (and, with
// a Hessian, the cross-range terms a split proxy loss leaves out).
void ExpectSameBytes(const QuantizedTensor& split, const QuantizedTensor& whole,
                     bool hessian) {
  QuantizedTensor a = split, b = whole;
  a.quality.reset();
  b.quality.reset();
  EXPECT_EQ(a, b);
  EXPECT_NEAR(split.quality->nmse, whole.quality->nmse, 1e-12 + 1e-9 * whole.quality->nmse);
  if (!hessian) {
    EXPECT_NEAR(split.quality->proxy_loss, whole.quality->proxy_loss, 1e-9);
  }
}

class SplitTest : public ::testing::TestWithParam<quant::Method> {};

TEST_P(SplitTest, RangesAssembleToTheWholeTensorsBytes) {
  const QuantizerConfig c = Config(GetParam());
  const std::vector<float> w = Weights(3);
  const QuantizeResult whole = Whole(c, w, nullptr);
  for (const auto& ranges : std::vector<std::vector<std::pair<int, int>>>{
           {{0, 3}, {3, 2}, {5, 2}}, {{0, 1}, {1, 6}}, {{0, 6}, {6, 1}}}) {
    ExpectSameBytes(Split(c, w, nullptr, ranges), whole.tensor, false);
  }
}

TEST_P(SplitTest, HessianBlocksAreDampedLikeTheWholeHessian) {
  QuantizerConfig c = Config(GetParam());
  const std::vector<float> w = Weights(4);
  const std::vector<double> h = Hessian(5);
  const QuantizeResult whole = Whole(c, w, &h);
  ExpectSameBytes(Split(c, w, &h, {{0, 2}, {2, 3}, {5, 2}}), whole.tensor, true);
}

TEST_P(SplitTest, OneRangeKeepsTheEnginesQualityExactly) {
  const QuantizerConfig c = Config(GetParam());
  const std::vector<float> w = Weights(6);
  const std::vector<double> h = Hessian(7);
  const QuantizeResult whole = Whole(c, w, &h);
  const QuantizedTensor one = Split(c, w, &h, {{0, 7}});
  EXPECT_EQ(one, whole.tensor);
}

INSTANTIATE_TEST_SUITE_P(Methods, SplitTest,
                         ::testing::Values(quant::Method::kGlvq, quant::Method::kRtn),
                         [](const auto& param_info) { return quant::MethodName(param_info.param); });

TEST(QualitySums, CombineToTheSameFiguresAsOneMeasurement) {
  const QuantizerConfig c = Config(quant::Method::kRtn);
  const std::vector<float> w = Weights(8);
  auto q = engine::MakeQuantizer(c);
  auto r = engine::QuantizeRange(**q, {"x", {w.data(), kRows, kCols}, nullptr, 0});
  ASSERT_TRUE(r.ok()) << r.status();
  const TensorQuality from_sums = r->sums.Quality();
  EXPECT_EQ(from_sums, *r->result.tensor.quality);
}

TEST(Assembler, RejectsRangesThatDoNotTileTheTensor) {
  const QuantizerConfig c = Config(quant::Method::kRtn);
  const std::vector<float> w = Weights(9);
  auto q = engine::MakeQuantizer(c);
  auto part = [&](int first, int count) {
    const quant::ColumnSpan s = *quant::GroupColumns(kCols, 16, first, count);
    const std::vector<float> cols = Columns(w, s);
    auto r = engine::QuantizeRange(**q, {"x", {cols.data(), kRows, s.width()}, nullptr, 0});
    return TensorPart{static_cast<uint32_t>(first), r->result.tensor, r->sums};
  };
  EXPECT_FALSE(AssembleTensor({part(0, 2), part(3, 4)}, kCols).ok());  // gap
  EXPECT_FALSE(AssembleTensor({part(0, 2), part(2, 2)}, kCols).ok());  // short
  EXPECT_FALSE(AssembleTensor({}, kCols).ok());
  EXPECT_TRUE(AssembleTensor({part(2, 5), part(0, 2)}, kCols).ok());  // any order
}

TEST(GroupColumns, CoversTheRangeAndRejectsOutOfRange) {
  EXPECT_EQ(quant::GroupColumns(100, 16, 6, 1)->begin, 96);
  EXPECT_EQ(quant::GroupColumns(100, 16, 6, 1)->end, 100);
  EXPECT_FALSE(quant::GroupColumns(100, 16, 6, 2).ok());
  EXPECT_FALSE(quant::GroupColumns(100, 16, 0, 0).ok());
}

TEST(ReadRangeFromFiles, ReadsColumnsAndHessianBlockThroughTheMap) {
  testing::ScratchDir dir;
  const std::vector<float> w = Weights(10);
  const std::vector<double> h = Hessian(11);
  std::vector<uint16_t> bf16;
  for (float v : w) bf16.push_back(FloatToBFloat16(v));
  const std::vector<TensorToWrite> tensors = {
      {"h", DType::kF64, {kCols, kCols}, std::as_bytes(std::span(h))},
      {"w", DType::kBF16, {kRows, kCols}, std::as_bytes(std::span(bf16))}};
  ASSERT_TRUE(WriteSafetensors(dir / "m.safetensors", tensors).ok());
  auto file = SafetensorsFile::Open(dir / "m.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  auto ref = [&](const char* name) {
    const TensorEntry& e = *(*file)->Find(name);
    return quant::TensorFileRef{dir / "m.safetensors", (*file)->header().data_offset + e.begin,
                                 e.end - e.begin, e.dtype, e.shape};
  };
  const quant::TensorFileRef wref = ref("w"), href = ref("h");
  auto data = quant::ReadRangeFromFiles(wref, &href, 16, 2, 3);
  ASSERT_TRUE(data.ok()) << data.status();
  const quant::ColumnSpan s{32, 80};
  ASSERT_EQ(data->width, 48);
  const std::vector<float> expected = Columns(w, s);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(data->weights[i], BFloat16ToFloat(FloatToBFloat16(expected[i])));
  }
  EXPECT_EQ(data->hessian_block, Block(h, s));
  EXPECT_EQ(data->hessian_mean_diagonal, engine::MeanDiagonal(h.data(), kCols, kCols + 1));

  quant::TensorFileRef bad = wref;
  bad.offset += 1 << 20;
  EXPECT_EQ(quant::ReadRangeFromFiles(bad, nullptr, 16, 0, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glvq
