#include "worker/cpu/sphere_decoder.h"

#include <cmath>
#include <vector>

namespace glvq::cpu {

BoxedSphereDecoder::BoxedSphereDecoder(const Eigen::MatrixXd& g, int bits, int64_t max_nodes)
    : max_nodes_(max_nodes) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  q_ = qr.householderQ();
  r_ = qr.matrixQR().triangularView<Eigen::Upper>();
  const double half_levels = std::ldexp(1.0, bits - 1);
  lo_ = -half_levels + 0.5;
  hi_ = half_levels - 0.5;
}

double BoxedSphereDecoder::Solve(const Eigen::VectorXd& y, Eigen::VectorXd* z) const {
  const int k = static_cast<int>(r_.rows());
  const Eigen::VectorXd t = q_.transpose() * y;  // ‖y − Gz‖ = ‖t − Rz‖
  double best = (t - r_ * *z).squaredNorm();
  Eigen::VectorXd best_z = *z;

  // Depth-first over coordinates k−1 … 0. At each level the candidates are
  // visited in order of distance from the level's centre (zig-zag).
  std::vector<double> center(k), partial(k + 1, 0.0), cur(k), step(k);
  std::vector<int> visited(k, 0);
  int64_t nodes = 0;
  auto centre_of = [&](int i) {
    double s = t[i];
    for (int j = i + 1; j < k; ++j) s -= r_(i, j) * cur[j];
    return s / r_(i, i);
  };
  auto first = [&](int i) {
    const double c = std::clamp(std::floor(center[i]) + 0.5, lo_, hi_);
    cur[i] = c;
    step[i] = center[i] >= c ? 1.0 : -1.0;
    visited[i] = 0;
  };
  // Next candidate at level i in zig-zag order, skipping values outside the
  // box; false when the level is exhausted.
  auto next = [&](int i) {
    while (true) {
      ++visited[i];
      const double base = std::clamp(std::floor(center[i]) + 0.5, lo_, hi_);
      const int n = visited[i];
      const double offset = ((n + 1) / 2) * (n % 2 == 1 ? step[i] : -step[i]);
      const double v = base + offset;
      if (std::abs(offset) > hi_ - lo_ + 1) return false;
      if (v >= lo_ && v <= hi_) {
        cur[i] = v;
        return true;
      }
    }
  };
  int i = k - 1;
  center[i] = centre_of(i);
  first(i);
  while (nodes++ < max_nodes_) {
    const double e = r_(i, i) * (center[i] - cur[i]);
    const double d = partial[i + 1] + e * e;
    if (d < best && i > 0) {  // descend
      partial[i] = d;
      --i;
      center[i] = centre_of(i);
      first(i);
      continue;
    }
    if (d < best) {  // a leaf closer than anything so far
      best = d;
      for (int j = 0; j < k; ++j) best_z[j] = cur[j];
    }
    // Later candidates at this level are no closer: climb to the first
    // level that still has one.
    do {
      if (++i >= k) {
        *z = best_z;
        return best;
      }
    } while (!next(i));
  }
  *z = best_z;
  return best;
}

}  // namespace glvq::cpu
