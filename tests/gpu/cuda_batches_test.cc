// The CUDA engine's batches (worker/cuda/batch_runner.h): a GPU's groups
// taken a few at a time give the bytes of one batch, and a task larger
// than the free device memory runs in batches instead of failing. Skips
// where no usable GPU exists (CI).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <Eigen/Dense>
#include <algorithm>
#include <vector>

#include "common/base/random.h"
#include "tests/support/test_support.h"
#include "worker/cuda/batch_plan.h"
#include "worker/cuda/batch_runner.h"
#include "worker/cuda/cuda_quantizer.h"
#include "worker/cuda/device.h"
#include "worker/engine/quantizer.h"

namespace glvq {
namespace {

using quant::QuantizerConfig;
using glvq::testing::LlmLikeValues;

#define SKIP_WITHOUT_GPU() \
  if (!cuda::UsableDeviceCount().ok()) GTEST_SKIP() << "no usable CUDA device"

QuantizerConfig Glvq(double bits, bool sdba) {
  // The CUDA group solver starts from the paper's µ rule (no µ grid).
  QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = quant::Method::kGlvq;
  c.bits = bits;
  c.dim = 8;
  c.sdba = sdba;
  return c;
}

// A positive definite n × n Hessian with correlated channels.
std::vector<double> TestHessian(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Eigen::MatrixXd x(n, 2 * n);
  for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = rng.Normal();
  x.row(1) *= 10.0;
  const Eigen::MatrixXd h = x * x.transpose() / static_cast<double>(x.cols());
  return std::vector<double>(h.data(), h.data() + h.size());
}

struct Task {
  int64_t rows, cols;
  std::vector<float> w;
  std::vector<double> h;  // empty: no Hessian
};

Task MakeTask(int64_t rows, int64_t cols, bool hessian, uint64_t seed) {
  return {rows, cols, LlmLikeValues(rows, cols, seed),
          hessian ? TestHessian(cols, seed + 1) : std::vector<double>{}};
}

absl::StatusOr<quant::QuantizeResult> QuantizeTask(const engine::Quantizer& q, const Task& t) {
  const engine::HessianView hv{t.h.data(), t.cols};
  return q.Quantize("layers.0.mlp.up.weight", {t.w.data(), t.rows, t.cols},
                    t.h.empty() ? nullptr : &hv);
}

QuantizedTensor QuantizeOk(const QuantizerConfig& c, const Task& t, int64_t max_batch_groups,
                           std::vector<int> devices = {0}) {
  auto q = cuda::MakeCudaQuantizer(c, std::move(devices), max_batch_groups);
  EXPECT_TRUE(q.ok()) << q.status();
  if (!q.ok()) return {};
  auto r = QuantizeTask(**q, t);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->tensor : QuantizedTensor{};
}

// Groups taken 1, 2 or 3 at a time (the option or the environment's cap)
// give the bytes of the whole task in one batch: with and without a
// Hessian, with SDBA (whose allocation needs every group's figures first),
// and a narrower last group.
TEST(CudaBatches, ForcedSmallBatchesGiveTheSameBytes) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int64_t cols;
    bool hessian, sdba;
    double bits;
  };
  for (const Case k : {Case{7 * 128 - 40, false, false, 2}, Case{7 * 128 - 40, true, false, 2},
                       Case{7 * 128 - 40, true, true, 2}, Case{8 * 128, false, true, 2.5}}) {
    SCOPED_TRACE(::testing::Message() << "cols=" << k.cols << " hessian=" << k.hessian
                                      << " sdba=" << k.sdba << " bits=" << k.bits);
    const Task t = MakeTask(64, k.cols, k.hessian, 40);
    const QuantizerConfig c = Glvq(k.bits, k.sdba);
    const QuantizedTensor whole = QuantizeOk(c, t, 0);
    ASSERT_FALSE(whole.codes.empty());
    for (int64_t cap : {1, 2, 3}) EXPECT_EQ(QuantizeOk(c, t, cap), whole) << "cap " << cap;
    ASSERT_EQ(::setenv(cuda::kMaxBatchGroupsEnv, "2", 1), 0);
    EXPECT_EQ(QuantizeOk(c, t, 0), whole) << cuda::kMaxBatchGroupsEnv << "=2";
    ::unsetenv(cuda::kMaxBatchGroupsEnv);
    if (*cuda::UsableDeviceCount() > 1) {  // every GPU, one group at a time
      EXPECT_EQ(QuantizeOk(c, t, 1, {}), whole);
    }
  }
}

// Holds device 0's memory but about `leave` bytes while it lives.
class MemorySqueeze {
 public:
  explicit MemorySqueeze(uint64_t leave) {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaSetDevice(0) != cudaSuccess ||
        cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess || free_bytes <= leave) {
      return;
    }
    // The largest block the allocator grants, 2 MiB less at a time.
    constexpr size_t kStep = 2 << 20;
    for (size_t n = free_bytes - leave; n > 0 && ptr_ == nullptr; n -= std::min(n, kStep)) {
      if (cudaMalloc(&ptr_, n) != cudaSuccess) {
        ptr_ = nullptr;
        cudaGetLastError();
      }
    }
  }
  ~MemorySqueeze() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  MemorySqueeze(const MemorySqueeze&) = delete;
  MemorySqueeze& operator=(const MemorySqueeze&) = delete;

  // Free bytes on device 0 now.
  static uint64_t Free() {
    size_t free_bytes = 0, total_bytes = 0;
    cudaSetDevice(0);
    cudaMemGetInfo(&free_bytes, &total_bytes);
    return free_bytes;
  }

 private:
  void* ptr_ = nullptr;
};

// Device bytes one group of `t` needs, as the engine plans them.
uint64_t BytesPerGroup(const Task& t, int64_t group_size) {
  const std::vector<Eigen::MatrixXd> blocks(t.h.empty() ? 0 : 1);
  const cuda::TaskInputs in{{t.w.data(), t.rows, t.cols}, group_size, 8, blocks};
  return cuda::DeviceWorkspace::BytesNeeded(cuda::ShapeOf(in, {0, 0, 1}, false));
}

// Ten groups with room for about three: batches, the bytes of one batch.
TEST(CudaBatches, TaskLargerThanFreeMemoryRunsInBatches) {
  SKIP_WITHOUT_GPU();
  const Task t = MakeTask(2048, 10 * 128, true, 41);
  const QuantizerConfig c = Glvq(2, true);
  // First unsqueezed: it also loads the kernels and cuBLAS.
  const QuantizedTensor whole = QuantizeOk(c, t, 0);
  const uint64_t per_group = BytesPerGroup(t, c.group_size);
  const MemorySqueeze squeeze(cuda::kDeviceHeadroomBytes + 7 * per_group / 2);
  if (MemorySqueeze::Free() >= cuda::kDeviceHeadroomBytes + 10 * per_group) {
    GTEST_SKIP() << "could not hold the device's memory";
  }
  EXPECT_EQ(QuantizeOk(c, t, 0), whole);
}

// Room for half a group: RESOURCE_EXHAUSTED (a worker then runs the task on
// the CPU), and the same quantizer works once the memory is back.
TEST(CudaBatches, GroupLargerThanFreeMemoryIsResourceExhausted) {
  SKIP_WITHOUT_GPU();
  const Task t = MakeTask(2048, 4 * 128, false, 42);
  const QuantizerConfig c = Glvq(2, false);
  auto q = cuda::MakeCudaQuantizer(c, {0});
  ASSERT_TRUE(q.ok()) << q.status();
  const uint64_t per_group = BytesPerGroup(t, c.group_size);
  {
    const MemorySqueeze squeeze(cuda::kDeviceHeadroomBytes + per_group / 2);
    if (MemorySqueeze::Free() >= cuda::kDeviceHeadroomBytes + per_group) {
      GTEST_SKIP() << "could not hold the device's memory";
    }
    auto r = QuantizeTask(**q, t);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  }
  EXPECT_TRUE(QuantizeTask(**q, t).ok());
}

}  // namespace
}  // namespace glvq
