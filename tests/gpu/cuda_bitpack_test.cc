// CUDA code unpacking against the CPU codec. Skips cleanly where no usable
// GPU exists (CI), but always checks that device discovery fails softly.
#include <gtest/gtest.h>

#include <vector>

#include "common/base/random.h"
#include "common/packed/bitpack.h"
#include "worker/cuda/device.h"
#include "worker/cuda/unpack.h"

namespace glvq {
namespace {

TEST(CudaDevice, DiscoveryNeverCrashes) {
  absl::StatusOr<int> count = cuda::UsableDeviceCount();
  if (count.ok()) {
    EXPECT_GT(*count, 0);
  } else {
    EXPECT_EQ(count.status().code(), absl::StatusCode::kUnavailable) << count.status();
  }
}

TEST(CudaBitpack, UnpackMatchesCpuForEveryWidth) {
  if (!cuda::UsableDeviceCount().ok()) GTEST_SKIP() << "no usable CUDA device";
  Rng rng(42);
  for (int bits = 1; bits <= 8; ++bits) {
    for (size_t n : {1u, 7u, 8u, 1000u, 1u << 20}) {
      std::vector<uint8_t> codes(n);
      for (uint8_t& c : codes) c = static_cast<uint8_t>(rng.Below(1u << bits));
      std::vector<std::byte> packed(PackedBytes(n, bits));
      ASSERT_TRUE(PackCodes(codes, bits, packed).ok());
      std::vector<uint8_t> gpu(n, 0xFF);
      ASSERT_TRUE(cuda::UnpackCodesOnDevice(packed, bits, gpu).ok());
      ASSERT_EQ(gpu, codes) << "bits=" << bits << " n=" << n;
    }
  }
}

TEST(CudaBitpack, RejectsBadArgumentsBeforeTouchingTheDevice) {
  std::vector<std::byte> packed(3);
  std::vector<uint8_t> codes(8);
  EXPECT_EQ(cuda::UnpackCodesOnDevice(packed, 9, codes).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cuda::UnpackCodesOnDevice(packed, 2, codes).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glvq
