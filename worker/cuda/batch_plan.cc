#include "worker/cuda/batch_plan.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace glvq::cuda {

std::vector<int64_t> PlanBatches(int64_t groups, uint64_t bytes_per_group, uint64_t free_bytes,
                                 uint64_t headroom_bytes, int64_t max_batch_groups) {
  if (groups <= 0 || free_bytes <= headroom_bytes) return {};
  const uint64_t room = free_bytes - headroom_bytes;
  int64_t capacity = groups;
  if (bytes_per_group > 0 && room / bytes_per_group < static_cast<uint64_t>(groups)) {
    capacity = static_cast<int64_t>(room / bytes_per_group);
  }
  if (max_batch_groups > 0) capacity = std::min(capacity, max_batch_groups);
  if (capacity == 0) return {};
  const int64_t batches = (groups + capacity - 1) / capacity;
  std::vector<int64_t> sizes(static_cast<size_t>(batches), groups / batches);
  for (int64_t i = 0; i < groups % batches; ++i) ++sizes[static_cast<size_t>(i)];
  return sizes;
}

absl::StatusOr<int64_t> ParseMaxBatchGroups(const char* value) {
  if (value == nullptr || *value == '\0') return 0;
  int64_t n = 0;
  if (!absl::SimpleAtoi(value, &n) || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kMaxBatchGroupsEnv, " must be a positive integer, got \"", value, "\""));
  }
  return n;
}

}  // namespace glvq::cuda
