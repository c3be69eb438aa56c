// µ-law companding F_µ and its inverse (docs/algorithms.md §1.2). µ = 0 is the identity (the
// limit, not a division by zero). Values are in units of the group scale.
#pragma once

#include <cmath>

namespace glvq::cpu {

// Below this µ the companding curve is taken as the identity: the relative
// deviation of F_µ from x is O(µ), so 1e-9 is far below float resolution.
inline constexpr double kMuOff = 1e-9;

// F_µ(x) = sgn(x) ln(1 + µ|x|) / ln(1 + µ)
inline double Compand(double x, double mu) {
  if (mu < kMuOff) return x;
  return std::copysign(std::log1p(mu * std::abs(x)) / std::log1p(mu), x);
}

// F_µ⁻¹(y) = sgn(y) ((1 + µ)^|y| − 1) / µ
inline double Expand(double y, double mu) {
  if (mu < kMuOff) return y;
  return std::copysign(std::expm1(std::abs(y) * std::log1p(mu)) / mu, y);
}

}  // namespace glvq::cpu
