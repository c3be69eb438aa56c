#include "worker/engine/parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace glvq::engine {

int ResolveThreads(int requested, int64_t work) {
  int t = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  t = std::max(t, 1);
  return static_cast<int>(std::min<int64_t>(t, std::max<int64_t>(work, 1)));
}

void ParallelFor(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  const int t = ResolveThreads(threads, n);
  if (t <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(t - 1));
  for (int k = 1; k < t; ++k) pool.emplace_back(worker);
  worker();
  for (std::thread& th : pool) th.join();
}

}  // namespace glvq::engine
