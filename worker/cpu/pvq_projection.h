// The shape search of PVQ (docs/algorithms.md §2): the point y of the pyramid
// P(D, K) whose direction is closest to a vector x, by the greedy pulse
// projection — start from ⌊K|x_i| / ‖x‖₁⌋, then add the remaining pulses
// one at a time where (x·y + |x_j|)² / (y·y + 2|y_j| + 1) is largest.
#pragma once

#include <cstdint>
#include <span>

namespace glvq::cpu {

// Writes y ∈ P(x.size(), pulses) (y.size() == x.size()) with the signs of
// x. A zero x gets all pulses on coordinate 0. Ties go to the lowest
// coordinate, so the result is a pure function of the inputs.
void ProjectToPyramid(std::span<const double> x, int pulses, std::span<int32_t> y);

// Codes one sub-vector w of a row with norm `norm` ≥ 0: y (w.size()
// entries) by ProjectToPyramid of w, the gain code of the level (`levels`,
// increasing) nearest to the MSE-optimal gain g* = (w / norm) · y / ‖y‖
// (ties: the lower level), and in w_hat (w.size() values) the weights the
// format decodes, computed exactly as the decoder does (docs/format.md
// §4.7). Returns the gain code.
int CodePvqVector(std::span<const double> w, float norm, int pulses,
                  std::span<const float> levels, std::span<int32_t> y,
                  std::span<double> w_hat);

}  // namespace glvq::cpu
