#include "worker/cpu/gptq_sweep.h"

#include <algorithm>
#include <numeric>

namespace glvq::cpu {

GptqSweep PrepareGptqSweep(const engine::PreparedHessian& h, int64_t cols, bool act_order) {
  GptqSweep s;
  s.diag.resize(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) s.diag[c] = h.Diagonal(c);
  s.order.resize(static_cast<size_t>(cols));
  std::iota(s.order.begin(), s.order.end(), int64_t{0});
  s.static_groups = act_order;
  if (act_order) {
    std::stable_sort(s.order.begin(), s.order.end(),
                     [&](int64_t a, int64_t b) { return s.diag[a] > s.diag[b]; });
    s.u = h.InverseCholeskyUpper(s.order);
  } else {
    s.u = h.InverseCholeskyUpper();
  }
  return s;
}

}  // namespace glvq::cpu
