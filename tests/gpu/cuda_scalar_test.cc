// RTN, GPTQ and E8P on CUDA against the CPU reference (the oracle). Skips where
// no usable GPU exists (CI). 1500 rows make two row tiles, the second
// partial; 600 columns make four groups of 128 and one of 88.
#include <gtest/gtest.h>

#include <vector>

#include "tests/support/test_support.h"
#include "worker/cuda/cuda_quantizer.h"
#include "worker/cuda/device.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {

using quant::QuantizerConfig;
using quant::QuantizeResult;
using quant::RtnVariant;

#define SKIP_WITHOUT_GPU() \
  if (!cuda::UsableDeviceCount().ok()) GTEST_SKIP() << "no usable CUDA device"

constexpr int64_t kRows = 1500, kCols = 600;

QuantizerConfig Scalar(quant::Method method, int bits, RtnVariant variant, bool act_order) {
  QuantizerConfig c;
  c.method = method;
  c.bits = bits;
  c.dim = 1;
  c.rtn_variant = variant;
  c.act_order = act_order;
  return c;
}

QuantizeResult QuantizeOk(const absl::StatusOr<std::unique_ptr<engine::Quantizer>>& q,
                          const std::vector<float>& w, const engine::HessianView* h) {
  EXPECT_TRUE(q.ok()) << q.status();
  if (!q.ok()) return {};
  auto r = (*q)->Quantize("layers.0.self_attn.o_proj.weight", {w.data(), kRows, kCols}, h);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : QuantizeResult{};
}

// Share of equal bytes in two code arrays of one size.
double SameShare(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  int64_t same = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) same += a[i] == b[i] ? 1 : 0;
  return a.empty() ? 1.0 : static_cast<double>(same) / static_cast<double>(a.size());
}

// RTN runs the CPU's own grid code without FMA contraction: the same bytes.
TEST(CudaScalar, RtnIsBitIdenticalToTheCpu) {
  SKIP_WITHOUT_GPU();
  const auto w = testing::LlmLikeValues(kRows, kCols, 41);
  const auto h = testing::CorrelatedHessian(kCols, 42);
  const engine::HessianView hv{h.data(), kCols};
  for (RtnVariant v : {RtnVariant::kMinMax, RtnVariant::kClipSearch}) {
    for (int bits : {2, 4}) {
      for (const engine::HessianView* hp :
           {static_cast<const engine::HessianView*>(nullptr), &hv}) {
        SCOPED_TRACE(::testing::Message() << "variant=" << static_cast<int>(v) << " bits=" << bits
                                          << " hessian=" << (hp != nullptr));
        const QuantizerConfig c = Scalar(quant::Method::kRtn, bits, v, false);
        const QuantizeResult cpu = QuantizeOk(engine::MakeQuantizer(c), w, hp);
        const QuantizeResult gpu = QuantizeOk(cuda::MakeCudaQuantizer(c), w, hp);
        EXPECT_EQ(gpu.tensor, cpu.tensor);
      }
    }
  }
}

// Without a Hessian chol(H⁻¹) is the identity, the products add exact
// zeros, and GPTQ too gives the CPU's bytes.
TEST(CudaScalar, GptqWithoutHessianIsBitIdenticalToTheCpu) {
  SKIP_WITHOUT_GPU();
  const auto w = testing::LlmLikeValues(kRows, kCols, 43);
  const QuantizerConfig c = Scalar(quant::Method::kGptq, 3, RtnVariant::kClipSearch, false);
  EXPECT_EQ(QuantizeOk(cuda::MakeCudaQuantizer(c), w, nullptr).tensor,
            QuantizeOk(engine::MakeQuantizer(c), w, nullptr).tensor);
}

// With a Hessian the lazy-batch products sum in cuBLAS's order: codes and
// grids agree for ≥ 99.9 %, the proxy loss within 1 %.
TEST(CudaScalar, GptqWithHessianMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  const auto w = testing::LlmLikeValues(kRows, kCols, 44);
  const auto h = testing::CorrelatedHessian(kCols, 45);
  const engine::HessianView hv{h.data(), kCols};
  for (RtnVariant v : {RtnVariant::kMinMax, RtnVariant::kClipSearch}) {
    for (bool act_order : {false, true}) {
      SCOPED_TRACE(::testing::Message()
                   << "variant=" << static_cast<int>(v) << " act_order=" << act_order);
      const QuantizerConfig c = Scalar(quant::Method::kGptq, 2, v, act_order);
      const QuantizeResult cpu = QuantizeOk(engine::MakeQuantizer(c), w, &hv);
      const QuantizeResult gpu = QuantizeOk(cuda::MakeCudaQuantizer(c), w, &hv);
      ASSERT_TRUE(cpu.tensor.quality && gpu.tensor.quality);
      EXPECT_NEAR(gpu.tensor.quality->proxy_loss, cpu.tensor.quality->proxy_loss,
                  0.01 * cpu.tensor.quality->proxy_loss);
      EXPECT_GE(SameShare(gpu.tensor.codes, cpu.tensor.codes), 0.999);
      ASSERT_EQ(gpu.tensor.scale.size(), cpu.tensor.scale.size());
      int64_t same_grids = 0;
      for (size_t i = 0; i < cpu.tensor.scale.size(); ++i) {
        same_grids +=
            gpu.tensor.scale[i] == cpu.tensor.scale[i] && gpu.tensor.zero[i] == cpu.tensor.zero[i];
      }
      EXPECT_GE(static_cast<double>(same_grids),
                0.999 * static_cast<double>(cpu.tensor.scale.size()));
      EXPECT_EQ(gpu.accounting, cpu.accounting);
    }
  }
}

QuantizerConfig E8p() {
  QuantizerConfig c;
  c.method = quant::Method::kE8p;
  c.bits = 2;
  c.dim = 8;
  return c;
}

// E8P without a Hessian: plain nearest-codeword rounding, the CPU's search
// on the same scales: the same bytes.
TEST(CudaScalar, E8pWithoutHessianIsBitIdenticalToTheCpu) {
  SKIP_WITHOUT_GPU();
  const auto w = testing::LlmLikeValues(kRows, kCols, 48);
  EXPECT_EQ(QuantizeOk(cuda::MakeCudaQuantizer(E8p()), w, nullptr).tensor,
            QuantizeOk(engine::MakeQuantizer(E8p()), w, nullptr).tensor);
}

// With a Hessian (BlockLDLQ, scales from the trial sweep's drifted
// weights) the feedback sums in another order: ≥ 99.9 % equal code bytes,
// proxy loss within 1 %, and the same bytes on any split.
TEST(CudaScalar, E8pWithHessianMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  const auto w = testing::LlmLikeValues(kRows, kCols, 49);
  const auto h = testing::CorrelatedHessian(kCols, 50);
  const engine::HessianView hv{h.data(), kCols};
  const QuantizeResult cpu = QuantizeOk(engine::MakeQuantizer(E8p()), w, &hv);
  const QuantizeResult gpu = QuantizeOk(cuda::MakeCudaQuantizer(E8p()), w, &hv);
  ASSERT_TRUE(cpu.tensor.quality && gpu.tensor.quality);
  EXPECT_NEAR(gpu.tensor.quality->proxy_loss, cpu.tensor.quality->proxy_loss,
              0.01 * cpu.tensor.quality->proxy_loss);
  EXPECT_GE(SameShare(gpu.tensor.codes, cpu.tensor.codes), 0.999);
  EXPECT_EQ(gpu.accounting, cpu.accounting);
  EXPECT_EQ(QuantizeOk(cuda::MakeCudaQuantizer(E8p(), {0}, 1), w, &hv).tensor, gpu.tensor);
}

// Every GEMM has one shape on any split, so passes of one tile, one pass,
// and every GPU give the same bytes, run after run.
TEST(CudaScalar, GptqBytesDoNotDependOnPassesOrDevices) {
  SKIP_WITHOUT_GPU();
  const auto w = testing::LlmLikeValues(kRows, kCols, 46);
  const auto h = testing::CorrelatedHessian(kCols, 47);
  const engine::HessianView hv{h.data(), kCols};
  const QuantizerConfig c = Scalar(quant::Method::kGptq, 2, RtnVariant::kClipSearch, true);
  const QuantizeResult one_pass = QuantizeOk(cuda::MakeCudaQuantizer(c, {0}), w, &hv);
  EXPECT_EQ(QuantizeOk(cuda::MakeCudaQuantizer(c, {0}), w, &hv).tensor, one_pass.tensor);
  EXPECT_EQ(QuantizeOk(cuda::MakeCudaQuantizer(c, {0}, 1), w, &hv).tensor, one_pass.tensor);
  if (*cuda::UsableDeviceCount() > 1) {
    EXPECT_EQ(QuantizeOk(cuda::MakeCudaQuantizer(c), w, &hv).tensor, one_pass.tensor);
  }
}

}  // namespace
}  // namespace glvq
