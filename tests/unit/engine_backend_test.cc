// Choosing a worker's engine: every branch of ResolveBackend on any machine,
// and the CPU fallback as it happens on this one (explicitly tested on a
// machine without a usable GPU, where `auto` must quantize exactly as the
// CPU engine does).
#include "worker/service/engine_backend.h"

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace glvq::worker {
namespace {

v1::GpuInfo Gpu(uint32_t index, uint64_t free_bytes) {
  v1::GpuInfo gpu;
  gpu.set_index(index);
  gpu.set_name("test GPU");
  gpu.set_memory_bytes(free_bytes * 2);
  gpu.set_free_bytes(free_bytes);
  return gpu;
}

TEST(EngineBackend, ParsesTheThreeRequests) {
  EXPECT_EQ(ParseBackendRequest("auto"), BackendRequest::kAuto);
  EXPECT_EQ(ParseBackendRequest("cpu"), BackendRequest::kCpu);
  EXPECT_EQ(ParseBackendRequest("cuda"), BackendRequest::kCuda);
  EXPECT_EQ(ParseBackendRequest("gpu"), std::nullopt);
  EXPECT_EQ(RequestFor(v1::BACKEND_UNSPECIFIED), BackendRequest::kAuto);
  EXPECT_EQ(RequestFor(v1::BACKEND_CUDA), BackendRequest::kCuda);
  EXPECT_EQ(RequestFor(v1::BACKEND_CPU), BackendRequest::kCpu);
}

TEST(EngineBackend, CpuNeverLooksAtGpus) {
  auto b = ResolveBackend(BackendRequest::kCpu, std::vector<v1::GpuInfo>{Gpu(0, 1 << 30)});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->backend, v1::BACKEND_CPU);
  EXPECT_TRUE(b->gpus.empty());
  EXPECT_EQ(b->Label(), "cpu");
}

TEST(EngineBackend, AutoWithoutGpuFallsBackToCpuAndSaysWhy) {
  auto b = ResolveBackend(BackendRequest::kAuto,
                          absl::UnavailableError("driver version is insufficient"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->backend, v1::BACKEND_CPU);
  EXPECT_EQ(b->fallback_reason, "driver version is insufficient");
  auto empty = ResolveBackend(BackendRequest::kAuto, std::vector<v1::GpuInfo>{});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->backend, v1::BACKEND_CPU);
  EXPECT_EQ(empty->fallback_reason, "no CUDA device is visible");
}

TEST(EngineBackend, CudaWithoutGpuIsRefusedWithTheReason) {
  auto b = ResolveBackend(BackendRequest::kCuda, absl::UnavailableError("no driver"));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(b.status().message().find("no usable GPU: no driver"), std::string::npos);
}

TEST(EngineBackend, AutoWithGpusTakesThemAll) {
  auto b = ResolveBackend(BackendRequest::kAuto,
                          std::vector<v1::GpuInfo>{Gpu(0, 1000), Gpu(1, 500)});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->backend, v1::BACKEND_CUDA);
  EXPECT_EQ(b->gpus.size(), 2u);
  EXPECT_EQ(b->gpus[0].free_bytes() + b->gpus[1].free_bytes(), 1500u);
  EXPECT_EQ(b->Label(), "cuda:0,1");
}

// On a machine without a usable GPU (CI), `auto` is the CPU engine: same
// bytes as engine::MakeQuantizer. With a GPU this is the gpu tests' job.
TEST(EngineBackend, AutoOnThisMachineWithoutGpuIsExactlyTheCpuEngine) {
  if (DiscoverGpus().ok()) GTEST_SKIP() << "a GPU is usable here; tests/gpu covers it";
  auto backend = ResolveLocalBackend(BackendRequest::kAuto);
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ(backend->backend, v1::BACKEND_CPU);
  EXPECT_FALSE(backend->fallback_reason.empty());
  EXPECT_EQ(GpuMemoryInUse(*backend), 0u);
  EXPECT_EQ(ResolveLocalBackend(BackendRequest::kCuda).status().code(),
            absl::StatusCode::kFailedPrecondition);

  quant::QuantizerConfig config;
  config.bits = 2;
  config.group_size = 64;
  config.seed = 7;
  const std::vector<float> w = testing::LlmLikeValues(32, 128, 11);
  const engine::MatrixView view{w.data(), 32, 128};
  std::string label;
  auto chosen = MakeBackendQuantizer(*backend, config, &label);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(label, "cpu");
  auto reference = engine::MakeQuantizer(config);
  ASSERT_TRUE(reference.ok());
  auto a = (*chosen)->Quantize("w", view, nullptr);
  auto b = (*reference)->Quantize("w", view, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tensor.codes, b->tensor.codes);
  EXPECT_EQ(a->dequantized, b->dequantized);
}

}  // namespace
}  // namespace glvq::worker
