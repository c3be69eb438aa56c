#include "common/base/parallel.h"

#include <algorithm>
#include <atomic>
#include <system_error>
#include <thread>
#include <vector>

#include "common/base/machine.h"

namespace glvq {

int ResolveThreads(int requested, int64_t work) {
  const int cores = UsableCores();  // the container's CPU quota, if any
  // More threads than cores buys nothing for this compute-bound work, and a
  // job spec must not make a worker ask the OS for thousands.
  const int t = requested > 0 ? std::min(requested, cores) : cores;
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
  for (int k = 1; k < t; ++k) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      break;  // the OS refused a thread: the threads started (and this one) do the work
    }
  }
  worker();
  for (std::thread& th : pool) th.join();
}

}  // namespace glvq
