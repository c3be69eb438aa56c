#include "common/base/machine.h"

#include <gtest/gtest.h>

#include <thread>

namespace glvq {
namespace {

TEST(Machine, CgroupFilesParse) {
  EXPECT_EQ(internal::ParseCpuMax("200000 100000"), 2.0);
  EXPECT_EQ(internal::ParseCpuMax("150000 100000"), 1.5);
  EXPECT_FALSE(internal::ParseCpuMax("max 100000").has_value());
  EXPECT_FALSE(internal::ParseCpuMax("").has_value());
  EXPECT_FALSE(internal::ParseCpuMax("-1 100000").has_value());
  EXPECT_EQ(internal::ParseMemoryMax("8589934592\n"), 8589934592u);
  EXPECT_FALSE(internal::ParseMemoryMax("max").has_value());
  EXPECT_FALSE(internal::ParseMemoryMax("lots").has_value());
}

TEST(Machine, UsableResourcesAreBoundedByTheMachine) {
  EXPECT_GE(UsableCores(), 1);
  EXPECT_LE(UsableCores(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  EXPECT_GT(UsableMemoryBytes(), 0u);
}

}  // namespace
}  // namespace glvq
