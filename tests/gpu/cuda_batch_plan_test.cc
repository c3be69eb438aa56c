// The CUDA engine's batch planning (worker/cuda/batch_plan.h): plain
// arithmetic, so it runs in CI, where no GPU exists.
#include "worker/cuda/batch_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

namespace glvq::cuda {
namespace {

using Sizes = std::vector<int64_t>;

constexpr uint64_t kMiB = 1ull << 20;

TEST(PlanBatches, OneBatchWhenEverythingFits) {
  EXPECT_EQ(PlanBatches(10, 10 * kMiB, 200 * kMiB, 64 * kMiB, 0), Sizes{10});
  // Exactly full: 10 groups of 10 MiB in 100 MiB beside the headroom.
  EXPECT_EQ(PlanBatches(10, 10 * kMiB, 164 * kMiB, 64 * kMiB, 0), Sizes{10});
}

TEST(PlanBatches, NearEqualBatchesOfAtMostTheCapacity) {
  // Room for 4 groups: 10 groups as 4 + 3 + 3, not 4 + 4 + 2.
  EXPECT_EQ(PlanBatches(10, 10 * kMiB, 104 * kMiB + 9 * kMiB, 64 * kMiB, 0), (Sizes{4, 3, 3}));
  EXPECT_EQ(PlanBatches(12, 10 * kMiB, 104 * kMiB, 64 * kMiB, 0), (Sizes{4, 4, 4}));
  for (int64_t groups = 1; groups <= 50; ++groups) {
    for (uint64_t room = 1; room <= 12; ++room) {
      const Sizes plan = PlanBatches(groups, kMiB, 64 * kMiB + room * kMiB, 64 * kMiB, 0);
      ASSERT_FALSE(plan.empty());
      EXPECT_EQ(std::accumulate(plan.begin(), plan.end(), int64_t{0}), groups);
      const int64_t capacity = std::min<int64_t>(groups, static_cast<int64_t>(room));
      EXPECT_EQ(static_cast<int64_t>(plan.size()), (groups + capacity - 1) / capacity);
      for (size_t i = 0; i < plan.size(); ++i) {
        EXPECT_LE(plan[i], capacity);
        EXPECT_GE(plan[i], plan.back());
        EXPECT_LE(plan[i] - plan.back(), 1);
      }
    }
  }
}

TEST(PlanBatches, CapLimitsTheBatches) {
  EXPECT_EQ(PlanBatches(7, kMiB, 80ull << 30, 64 * kMiB, 2), (Sizes{2, 2, 2, 1}));
  EXPECT_EQ(PlanBatches(7, kMiB, 80ull << 30, 64 * kMiB, 1), Sizes(7, 1));
  EXPECT_EQ(PlanBatches(3, kMiB, 80ull << 30, 64 * kMiB, 100), Sizes{3});
  // The smaller of the cap and what memory allows.
  EXPECT_EQ(PlanBatches(6, 10 * kMiB, 84 * kMiB, 64 * kMiB, 3), (Sizes{2, 2, 2}));
}

TEST(PlanBatches, EmptyWhenNotOneGroupFits) {
  EXPECT_TRUE(PlanBatches(5, 10 * kMiB, 64 * kMiB + 10 * kMiB - 1, 64 * kMiB, 0).empty());
  EXPECT_TRUE(PlanBatches(5, 1, 64 * kMiB, 64 * kMiB, 0).empty());  // only headroom
  EXPECT_TRUE(PlanBatches(5, 1, 10 * kMiB, 64 * kMiB, 0).empty());  // less than headroom
  EXPECT_TRUE(PlanBatches(0, 1, 80ull << 30, 64 * kMiB, 0).empty());
  EXPECT_EQ(PlanBatches(5, 10 * kMiB, 74 * kMiB, 64 * kMiB, 0), Sizes(5, 1));
}

TEST(PlanBatches, HugeFiguresDoNotOverflow) {
  const uint64_t huge = ~0ull;
  EXPECT_EQ(PlanBatches(1'000'000, 1, huge, 64 * kMiB, 0), Sizes{1'000'000});
  EXPECT_TRUE(PlanBatches(3, huge, 80ull << 30, 64 * kMiB, 0).empty());
}

TEST(ParseMaxBatchGroups, UnsetIsNoCapAndOnlyPositiveIntegersCap) {
  EXPECT_EQ(*ParseMaxBatchGroups(nullptr), 0);
  EXPECT_EQ(*ParseMaxBatchGroups(""), 0);
  EXPECT_EQ(*ParseMaxBatchGroups("3"), 3);
  for (const char* bad : {"0", "-2", "two", "3x", "1.5"}) {
    EXPECT_EQ(ParseMaxBatchGroups(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace glvq::cuda
