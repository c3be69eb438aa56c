// The CUDA packer and dequantizer against the CPU codec (PackGroupCodes,
// DequantizeRef): the same bytes and the same floats, bit for bit. Skips
// where no usable GPU exists (CI).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

#include "common/base/random.h"
#include "common/packed/quantized_tensor.h"
#include "tests/support/test_support.h"
#include "worker/cuda/device.h"
#include "worker/cuda/device_ops.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (!cuda::UsableDeviceCount().ok()) GTEST_SKIP() << "no usable CUDA device"

// A packed tensor with per-group bits 1..8 and random codes, before packing.
QuantizedTensor Shell(int64_t rows, int64_t cols, int64_t group_size, Rng& rng,
                      std::vector<uint8_t>* unpacked) {
  QuantizedTensor t;
  t.name = "pack.weight";
  t.method = "glvq";
  t.rows = rows;
  t.cols = cols;
  t.group_size = group_size;
  t.dim = 4;
  for (int64_t g = 0; g < t.NumGroups(); ++g) {
    const auto b = static_cast<uint8_t>(1 + g % 8);
    t.bits.push_back(b);
    for (int64_t i = 0; i < rows * t.GroupWidth(g); ++i) {
      unpacked->push_back(static_cast<uint8_t>(rng.Below(1u << b)));
    }
  }
  return t;
}

TEST(CudaCodec, PackingMatchesTheCpuPacker) {
  SKIP_WITHOUT_GPU();
  Rng rng(40);
  for (auto [rows, cols, gs] : {std::tuple{7, 1000, 128}, {1, 13, 4}, {33, 515, 64}}) {
    std::vector<uint8_t> unpacked;
    QuantizedTensor cpu = Shell(rows, cols, gs, rng, &unpacked);
    QuantizedTensor gpu = cpu;
    ASSERT_TRUE(PackGroupCodes(unpacked, &cpu).ok());
    const absl::Status s = cuda::PackGroupCodesOnDevice(unpacked, &gpu);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(gpu.offsets, cpu.offsets);
    EXPECT_EQ(gpu.codes, cpu.codes) << rows << "x" << cols << " groups of " << gs;
  }
  std::vector<uint8_t> unpacked;
  QuantizedTensor bad = Shell(4, 16, 8, rng, &unpacked);  // group 0 has 1-bit codes
  unpacked[3] = 2;
  EXPECT_EQ(cuda::PackGroupCodesOnDevice(unpacked, &bad).code(),
            absl::StatusCode::kInvalidArgument);
}

void ExpectSameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  size_t differ = 0, first = a.size();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      first = differ++ == 0 ? i : first;
    }
  }
  EXPECT_EQ(differ, 0u) << "first at " << first << ": " << a[first] << " vs " << b[first];
}

// Quantized by the CPU engine (ragged shape, companding on and off, short
// row tails for d = 32), decoded on the device.
TEST(CudaCodec, DequantizeIsBitExactAgainstDequantizeRef) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 96, cols = 1000;
  const auto w = glvq::testing::LlmLikeValues(rows, cols, 41);
  for (int d : {8, 32}) {
    for (double mu_max : {0.0, 255.0}) {
      quant::QuantizerConfig c;
      c.dim = d;
      c.bits = 3;
      c.glvq.mu_max = mu_max;
      c.glvq.mu_min = std::min(c.glvq.mu_min, mu_max);
      auto q = engine::MakeQuantizer(c);
      ASSERT_TRUE(q.ok());
      auto r = (*q)->Quantize("dq.weight", {w.data(), rows, cols}, nullptr);
      ASSERT_TRUE(r.ok()) << r.status();
      std::vector<float> gpu(static_cast<size_t>(rows * cols));
      const absl::Status s = cuda::DequantizeOnDevice(r->tensor, gpu);
      ASSERT_TRUE(s.ok()) << s;
      SCOPED_TRACE(::testing::Message() << "d=" << d << " mu_max=" << mu_max);
      ExpectSameFloats(gpu, r->dequantized);  // r->dequantized is DequantizeRef's
    }
  }
}

// Random generators and strong companding over many weights: the flagged
// near-tie roundings are settled by the host as DequantizeRef would.
TEST(CudaCodec, DequantizeIsBitExactOnRandomSideInformation) {
  SKIP_WITHOUT_GPU();
  Rng rng(42);
  std::vector<uint8_t> unpacked;
  QuantizedTensor t = Shell(512, 2000, 128, rng, &unpacked);
  t.dim = 8;
  for (int64_t g = 0; g < t.NumGroups(); ++g) {
    t.scale.push_back(static_cast<float>(0.01 + rng.Uniform()));
    t.mu.push_back(g % 3 == 0 ? 0.0f : static_cast<float>(255 * rng.Uniform()));
    // |G z| stays around 1, the companded range, whatever the width.
    const double half = std::ldexp(1.0, t.bits[g] - 1);
    for (int i = 0; i < 64; ++i) {
      t.generators.push_back(static_cast<float>(0.3 * rng.Normal() / half));
    }
  }
  ASSERT_TRUE(PackGroupCodes(unpacked, &t).ok());
  std::vector<float> ref(static_cast<size_t>(t.rows * t.cols)), gpu(ref.size());
  ASSERT_TRUE(DequantizeRef(t, ref).ok());
  const absl::Status s = cuda::DequantizeOnDevice(t, gpu);
  ASSERT_TRUE(s.ok()) << s;
  ExpectSameFloats(gpu, ref);

  t.rht_seed = {1, 2};
  EXPECT_EQ(cuda::DequantizeOnDevice(t, gpu).code(), absl::StatusCode::kUnimplemented);
  t.rht_seed.clear();
  std::vector<float> short_out(3);
  EXPECT_EQ(cuda::DequantizeOnDevice(t, short_out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glvq
