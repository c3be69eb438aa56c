// Deterministic parallel loops: each index is processed exactly once by
// `fn`, which must write only to that index's own outputs, so results never
// depend on the thread count or the interleaving.
#pragma once

#include <cstdint>
#include <functional>

namespace glvq {

// Number of threads to use for `requested` (0 = all cores): at most the
// cores and at most `work`, at least 1.
int ResolveThreads(int requested, int64_t work);

// Runs fn(i) for i in [0, n) on up to `threads` threads (0 = all cores).
void ParallelFor(int64_t n, int threads, const std::function<void(int64_t)>& fn);

}  // namespace glvq
