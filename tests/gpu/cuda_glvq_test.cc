// The CUDA GLVQ engine against the CPU reference (the oracle). Skips where
// no usable GPU exists (CI).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "tests/support/test_support.h"
#include "worker/cpu/companding.h"
#include "worker/cpu/glvq_group.h"
#include "worker/cuda/cuda_quantizer.h"
#include "worker/cuda/device.h"
#include "worker/cuda/device_ops.h"
#include "worker/engine/group_range.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {

using quant::QuantizerConfig;
using quant::QuantizeResult;
using glvq::testing::CorrelatedHessian;
using glvq::testing::LlmLikeValues;

#define SKIP_WITHOUT_GPU() \
  if (!cuda::UsableDeviceCount().ok()) GTEST_SKIP() << "no usable CUDA device"

QuantizerConfig Glvq(double bits, int dim) {
  // The CUDA group solver starts from the paper's µ rule (no µ grid).
  QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = quant::Method::kGlvq;
  c.bits = bits;
  c.dim = dim;
  return c;
}

QuantizeResult QuantizeOk(const absl::StatusOr<std::unique_ptr<engine::Quantizer>>& q,
                          const std::vector<float>& w, int64_t rows, int64_t cols,
                          const engine::HessianView* h) {
  EXPECT_TRUE(q.ok()) << q.status();
  auto r = (*q)->Quantize("layers.0.mlp.up.weight", {w.data(), rows, cols}, h);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : QuantizeResult{};
}

// Given the CPU's learned G, µ and s, Babai rounding on the device gives
// the CPU's codes for (nearly) every vector, short row tails included.
TEST(CudaGlvq, BabaiCodesAgreeWithTheCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 256, cols = 1000;  // last group 104 columns: tails for d = 32
  const auto w = LlmLikeValues(rows, cols, 31);
  for (int d : {8, 32}) {
    for (double mu_max : {0.0, 255.0}) {
      QuantizerConfig c = Glvq(3, d);
      c.glvq.mu_max = mu_max;
      c.glvq.mu_min = std::min(c.glvq.mu_min, mu_max);
      const QuantizeResult ref = QuantizeOk(engine::MakeQuantizer(c), w, rows, cols, nullptr);
      const QuantizedTensor& t = ref.tensor;
      cuda::BabaiInput in{{w.data(), rows, cols}, c.group_size, d, {}, t.scale, {}, {}};
      for (int64_t g = 0; g < t.NumGroups(); ++g) {
        in.bits.push_back(t.bits[g]);
        in.mu.push_back(t.mu[g]);
        Eigen::MatrixXd gen(d, d);
        for (int i = 0; i < d * d; ++i) gen(i / d, i % d) = t.generators[g * d * d + i];
        in.g.push_back(gen);
      }
      auto gpu = cuda::BabaiCodesOnDevice(in);
      ASSERT_TRUE(gpu.ok()) << gpu.status();
      int64_t vectors = 0, same = 0;
      for (int64_t g = 0; g < t.NumGroups(); ++g) {
        const int64_t c0 = g * c.group_size, width = t.GroupWidth(g);
        Eigen::MatrixXd y(rows, width);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t k = 0; k < width; ++k) {
            y(r, k) = cpu::Compand(double(w[r * cols + c0 + k]) / double(t.scale[g]), in.mu[g]);
          }
        }
        const Eigen::MatrixXd z = cpu::BabaiCoordinates(y, in.g[g], d, in.bits[g]);
        const double half = std::ldexp(1.0, in.bits[g] - 1);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t v0 = 0; v0 < width; v0 += d, ++vectors) {
            bool equal = true;
            for (int64_t k = v0; k < std::min(width, v0 + d); ++k) {
              equal &= (*gpu)[r * cols + c0 + k] == static_cast<uint8_t>(z(r, k) - 0.5 + half);
            }
            same += equal ? 1 : 0;
          }
        }
      }
      EXPECT_GE(static_cast<double>(same), 0.999 * static_cast<double>(vectors))
          << "d=" << d << " mu_max=" << mu_max << ": " << same << " of " << vectors;
    }
  }
}

// The whole learning loop: quality within 1 % of the CPU's, with and
// without a Hessian and SDBA; same widths and exact bit accounting.
TEST(CudaGlvq, FullLoopQualityMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 256, cols = 600;  // 4 full groups and one of 88 columns
  const auto w = LlmLikeValues(rows, cols, 32);
  const auto h = CorrelatedHessian(cols, 33);
  const engine::HessianView hv{h.data(), cols};
  struct Case {
    bool hessian, sdba;
    int d;
  };
  // d = 32 with a Hessian solves 1024 × 1024 systems on the host: once.
  for (const Case k : {Case{false, false, 8}, Case{false, true, 8}, Case{true, false, 8},
                       Case{true, true, 8}, Case{false, false, 32}, Case{true, false, 32}}) {
    SCOPED_TRACE(::testing::Message()
                 << "hessian=" << k.hessian << " sdba=" << k.sdba << " d=" << k.d);
    QuantizerConfig c = Glvq(2, k.d);
    c.sdba = k.sdba;
    const engine::HessianView* hp = k.hessian ? &hv : nullptr;
    const QuantizeResult cpu = QuantizeOk(engine::MakeQuantizer(c), w, rows, cols, hp);
    const QuantizeResult gpu = QuantizeOk(cuda::MakeCudaQuantizer(c), w, rows, cols, hp);
    ASSERT_TRUE(cpu.tensor.quality && gpu.tensor.quality);
    EXPECT_NEAR(gpu.tensor.quality->nmse, cpu.tensor.quality->nmse,
                0.01 * cpu.tensor.quality->nmse);
    EXPECT_NEAR(gpu.tensor.quality->proxy_loss, cpu.tensor.quality->proxy_loss,
                0.01 * cpu.tensor.quality->proxy_loss);
    EXPECT_EQ(gpu.tensor.bits, cpu.tensor.bits);
    EXPECT_EQ(gpu.accounting, cpu.accounting);
  }
}

// Same bytes from run to run and on any number of GPUs, and a range of
// groups (a task) gives the bytes of the same groups of the whole tensor.
TEST(CudaGlvq, DeterministicAndRangesMatchTheWholeTensor) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 64, cols = 700;
  const auto w = LlmLikeValues(rows, cols, 34);
  const QuantizerConfig c = Glvq(2, 8);
  auto q = cuda::MakeCudaQuantizer(c, {0});
  ASSERT_TRUE(q.ok()) << q.status();
  const QuantizeResult whole = QuantizeOk(q, w, rows, cols, nullptr);
  EXPECT_EQ(QuantizeOk(q, w, rows, cols, nullptr).tensor, whole.tensor);
  if (*cuda::UsableDeviceCount() > 1) {  // the groups split over every GPU
    EXPECT_EQ(QuantizeOk(cuda::MakeCudaQuantizer(c), w, rows, cols, nullptr).tensor, whole.tensor);
  }
  const int64_t first = 2, count = 3, c0 = first * c.group_size, width = count * c.group_size;
  std::vector<float> part(static_cast<size_t>(rows * width));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(w.begin() + r * cols + c0, width, part.begin() + r * width);
  }
  auto range = engine::QuantizeRange(**q, {"layers.0.mlp.up.weight", {part.data(), rows, width}});
  ASSERT_TRUE(range.ok()) << range.status();
  const QuantizedTensor& t = range->result.tensor;
  const int64_t d2 = c.dim * c.dim;
  for (int64_t g = 0; g < count; ++g) {
    const int64_t wg = first + g;
    EXPECT_EQ(t.scale[g], whole.tensor.scale[wg]);
    EXPECT_EQ(t.mu[g], whole.tensor.mu[wg]);
    EXPECT_TRUE(std::equal(t.generators.begin() + g * d2, t.generators.begin() + (g + 1) * d2,
                           whole.tensor.generators.begin() + wg * d2));
    EXPECT_TRUE(std::equal(t.codes.begin() + t.offsets[g], t.codes.begin() + t.offsets[g + 1],
                           whole.tensor.codes.begin() + whole.tensor.offsets[wg]))
        << "group " << wg;
  }
}

TEST(CudaGlvq, UnportedConfigurationsAreUnimplemented) {
  SKIP_WITHOUT_GPU();
  QuantizerConfig exact = Glvq(2, 8), ldlq = Glvq(2, 8), pvq = Glvq(2, 8), grid = Glvq(2, 8);
  exact.glvq.exact_search = true;
  ldlq.ldlq = true;
  pvq.method = quant::Method::kPvq;
  grid.glvq.mu_grid = 6;
  for (const QuantizerConfig& c : {exact, ldlq, pvq, grid}) {
    EXPECT_FALSE(cuda::CudaSupports(c));
    EXPECT_EQ(cuda::MakeCudaQuantizer(c).status().code(), absl::StatusCode::kUnimplemented);
  }
  EXPECT_EQ(cuda::MakeCudaQuantizer(Glvq(2, 8), {-1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glvq
