// Gain levels of PVQ (docs/algorithms.md §2). After the randomized Hadamard
// transform a row of n weights points in a near-uniform direction, so the
// share of its energy that falls on D of its coordinates is a² ~
// Beta(D/2, (n − D)/2), and a sub-vector's gain relative to its row norm is
// a ∈ [0, 1]. Two level designs on that density:
//  - quantile levels: level j at the (j + ½)/L quantile of a;
//  - Lloyd–Max levels: the MSE-optimal L levels for a (centroid and
//    nearest-neighbour conditions iterated from the quantile levels).
// Both are computed from the regularized incomplete beta function in closed
// form (no sampling), deterministically.
#pragma once

#include <cstdint>
#include <vector>

#include "common/quant/config.h"

namespace glvq::cpu {

// I_x(a, b), the regularized incomplete beta function, for x in [0, 1] and
// a, b > 0 (continued fraction, relative accuracy ~1e-14).
double RegularizedIncompleteBeta(double x, double a, double b);

// `levels` increasing gain levels for sub-vectors of `dim` coordinates of
// rows of `n` coordinates. n ≤ dim (one vector per row) has a = 1: every
// level is 1.
std::vector<double> PvqGainLevels(quant::PvqGainLevels design, int dim, int64_t n, int levels);

}  // namespace glvq::cpu
