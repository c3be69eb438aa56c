// How many column groups a GPU holds at once: the CUDA engine quantizes a
// GPU's span of groups in consecutive batches sized from its free memory
// (docs/engine.md, "CUDA engine"). Plain arithmetic, no CUDA, so that it is
// unit-tested on machines without a GPU.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace glvq::cuda {

// Device memory left unplanned beside a batch's workspace: cuBLAS's own
// workspace, the runtime's allocations and allocation granularity.
inline constexpr uint64_t kDeviceHeadroomBytes = 64ull << 20;

// Test hook: a positive integer caps the groups of a batch, so that tests
// (and a worker under test) run many small batches on a large GPU.
inline constexpr char kMaxBatchGroupsEnv[] = "GLVQ_CUDA_MAX_BATCH_GROUPS";

// Sizes, in groups, of consecutive batches covering `groups` groups when a
// batch of n groups needs at most n · bytes_per_group bytes and may use
// free_bytes − headroom_bytes; with max_batch_groups > 0 no batch exceeds
// it. As few batches as that allows, of near-equal sizes (the larger ones
// first), so that no batch is a small remainder. Empty when not even one
// group fits, or groups ≤ 0.
std::vector<int64_t> PlanBatches(int64_t groups, uint64_t bytes_per_group, uint64_t free_bytes,
                                 uint64_t headroom_bytes, int64_t max_batch_groups);

// The value of kMaxBatchGroupsEnv (nullptr: unset): 0 (no cap) when unset
// or empty, the cap for a positive integer, INVALID_ARGUMENT otherwise.
absl::StatusOr<int64_t> ParseMaxBatchGroups(const char* value);

}  // namespace glvq::cuda
