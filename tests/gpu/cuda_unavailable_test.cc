// On a machine without a usable CUDA device (CI), the CUDA engine's entry
// points answer UNAVAILABLE instead of crashing. Skipped where a device is
// present (tests/gpu/cuda_glvq_test.cc covers that side).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <vector>

#include "common/packed/quantized_tensor.h"
#include "worker/cuda/batch_plan.h"
#include "worker/cuda/cublas_api.h"
#include "worker/cuda/cuda_quantizer.h"
#include "worker/cuda/device.h"
#include "worker/cuda/device_ops.h"

namespace glvq {
namespace {

quant::QuantizerConfig Glvq() {
  quant::QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = quant::Method::kGlvq;
  c.bits = 2;
  c.dim = 8;
  return c;
}

// cuBLAS is loaded with dlopen (cublas_api.h), so a missing library or
// symbol would only show at a GPU's first task: check it here, where the
// toolkit is installed, with or without a device.
TEST(CudaLibraries, CublasLoadsWithEverySymbol) {
  absl::StatusOr<const cuda::CublasApi*> api = cuda::Cublas();
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_NE((*api)->dgemm, nullptr);
  EXPECT_STREQ((*api)->status_name(CUBLAS_STATUS_ALLOC_FAILED), "CUBLAS_STATUS_ALLOC_FAILED");
}

TEST(CudaWithoutDevice, EveryEntryPointIsUnavailable) {
  if (cuda::UsableDeviceCount().ok()) GTEST_SKIP() << "a usable CUDA device is present";
  EXPECT_EQ(cuda::UsableDeviceCount().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cuda::MakeCudaQuantizer(Glvq()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cuda::MakeCudaQuantizer(Glvq(), {0}).status().code(), absl::StatusCode::kUnavailable);
  quant::QuantizerConfig gptq = Glvq();
  gptq.method = quant::Method::kGptq;
  gptq.dim = 1;
  EXPECT_EQ(cuda::MakeCudaQuantizer(gptq).status().code(), absl::StatusCode::kUnavailable);

  const std::vector<float> w(16 * 8, 0.5f);
  cuda::BabaiInput in{
      {w.data(), 16, 8}, 8, 8, {2}, {1.0f}, {0.0}, {Eigen::MatrixXd::Identity(8, 8)}};
  EXPECT_EQ(cuda::BabaiCodesOnDevice(in).status().code(), absl::StatusCode::kUnavailable);

  QuantizedTensor t;
  t.name = "x.weight";
  t.method = "glvq";
  t.rows = 2;
  t.cols = 8;
  t.group_size = 8;
  t.dim = 8;
  t.bits = {2};
  t.scale = {1.0f};
  t.mu = {0.0f};
  t.generators.assign(64, 0.0f);
  const std::vector<uint8_t> codes(16, 1);
  EXPECT_EQ(cuda::PackGroupCodesOnDevice(codes, &t).code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(PackGroupCodes(codes, &t).ok());
  std::vector<float> out(16);
  EXPECT_EQ(cuda::DequantizeOnDevice(t, out).code(), absl::StatusCode::kUnavailable);
}

// The batch cap (a test hook) is checked before any device is looked for.
TEST(CudaBatchCap, InvalidValuesAreInvalidArgumentOnAnyMachine) {
  EXPECT_EQ(cuda::MakeCudaQuantizer(Glvq(), {}, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(::setenv(cuda::kMaxBatchGroupsEnv, "none", 1), 0);
  const absl::Status status = cuda::MakeCudaQuantizer(Glvq()).status();
  ::unsetenv(cuda::kMaxBatchGroupsEnv);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

// What is ported is a property of the configuration alone.
TEST(CudaSupport, GlvqWithoutExactSearchOrLdlqAndTheBaselines) {
  quant::QuantizerConfig c = Glvq();
  EXPECT_TRUE(cuda::CudaSupports(c));
  c.sdba = true;
  c.rht = true;
  EXPECT_TRUE(cuda::CudaSupports(c));
  c.glvq.exact_search = true;
  EXPECT_FALSE(cuda::CudaSupports(c));
  c.glvq.exact_search = false;
  c.ldlq = true;
  EXPECT_FALSE(cuda::CudaSupports(c));
  c.ldlq = false;
  c.glvq.mu_grid = 6;  // the best preset's µ grid runs on the CPU engine
  EXPECT_FALSE(cuda::CudaSupports(c));
  EXPECT_FALSE(cuda::CudaSupports(quant::QuantizerConfig{}));
  for (quant::Method m : {quant::Method::kRtn, quant::Method::kGptq, quant::Method::kE8p}) {
    c = Glvq();
    c.method = m;
    c.act_order = true;
    EXPECT_TRUE(cuda::CudaSupports(c)) << quant::MethodName(m);
  }
  c = Glvq();
  c.method = quant::Method::kPvq;
  EXPECT_FALSE(cuda::CudaSupports(c));
}

}  // namespace
}  // namespace glvq
