// Exact closest lattice point under the box of clamped midrise codes
// (Schnorr–Euchner depth-first search): minimises ‖y − G z‖² over
// z ∈ {−2^(b−1) + ½, …, 2^(b−1) − ½}^k. Babai rounding's cell is a
// parallelepiped; only this search lets a learned lattice gain over a cube.
#pragma once

#include <Eigen/Dense>
#include <cstdint>

namespace glvq::cpu {

class BoxedSphereDecoder {
 public:
  // `g` is k × k and invertible; `bits` fixes the box. `max_nodes` bounds
  // the search per vector: past it the best point found so far is returned
  // (never worse than the starting point).
  BoxedSphereDecoder(const Eigen::MatrixXd& g, int bits, int64_t max_nodes = 200000);

  // Improves `z` (half-integer coordinates inside the box, e.g. Babai's
  // answer) in place to the closest point to `y`; returns ‖y − G z‖².
  double Solve(const Eigen::VectorXd& y, Eigen::VectorXd* z) const;

 private:
  Eigen::MatrixXd q_;  // G = Q R
  Eigen::MatrixXd r_;
  double lo_, hi_;     // smallest and largest coordinate value
  int64_t max_nodes_;
};

}  // namespace glvq::cpu
