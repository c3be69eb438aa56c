// The input limits of docs/security.md ("Limits") that do not need a
// server, each triggered once: job file size, safetensors header size,
// tensor extents. (Message sizes: service_rpc_test; tasks per job, active
// jobs, watchers: security_test.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/jobspec/job_spec.h"
#include "common/packed/quantized_tensor.h"
#include "common/safetensors/header.h"
#include "tests/support/test_support.h"

namespace glvq {
namespace {
using ::testing::HasSubstr;

TEST(InputLimits, JobFileOverOneMebibyteIsRefused) {
  testing::ScratchDir dir;
  const auto path = dir.path() / "job.yaml";
  testing::WriteFile(path, "# " + std::string((1 << 20) + 1, 'x') + "\n");
  auto job = jobspec::LoadJobFile(path);
  ASSERT_FALSE(job.ok());
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("job.yaml"));
}

TEST(InputLimits, SafetensorsHeaderOverTheLimitIsRefusedBeforeReading) {
  std::vector<std::byte> file(8 + 16);
  const uint64_t n = kMaxSafetensorsHeaderBytes + 8;
  std::memcpy(file.data(), &n, 8);  // little-endian length prefix
  auto header = ParseSafetensorsHeader(file);
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(InputLimits, TensorExtentsBeyondTheFormatAreRefused) {
  QuantizedTensor qt;
  qt.name = "w";
  qt.method = "rtn";
  qt.rows = int64_t{1} << 31;
  qt.cols = 8;
  qt.group_size = 8;
  qt.dim = 1;
  const absl::Status s = ValidateQuantizedTensor(qt);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("rows must be in 1..2147483647"));
}

}  // namespace
}  // namespace glvq
