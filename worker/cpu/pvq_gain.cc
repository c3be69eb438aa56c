#include "worker/cpu/pvq_gain.h"

#include <math.h>  // lgamma_r: std::lgamma writes the global signgam

#include <algorithm>
#include <cmath>

namespace glvq::cpu {
namespace {

double LogGamma(double x) {
  int sign = 0;
  return lgamma_r(x, &sign);
}

// Continued fraction of I_x(a, b) (modified Lentz), converging fast for
// x < (a + 1) / (a + b + 2).
double BetaContinuedFraction(double x, double a, double b) {
  constexpr int kMaxIterations = 100000;
  constexpr double kEpsilon = 1e-15, kTiny = 1e-300;
  auto guard = [](double v) { return std::fabs(v) < kTiny ? kTiny : v; };
  double c = 1, d = 1 / guard(1 - (a + b) * x / (a + 1));
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a - 1 + m2) * (a + m2));
    d = 1 / guard(1 + aa * d);
    c = guard(1 + aa / c);
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2));
    d = 1 / guard(1 + aa * d);
    c = guard(1 + aa / c);
    const double step = d * c;
    h *= step;
    if (std::fabs(step - 1) < kEpsilon) break;
  }
  return h;
}

// I_x(a, b) and 1 − I_x(a, b), the smaller of the two computed directly so
// that tail probabilities keep their relative precision.
struct BetaTails {
  double lower = 0, upper = 1;
};

BetaTails Tails(double x, double a, double b) {
  if (x <= 0) return {0, 1};
  if (x >= 1) return {1, 0};
  const double front = std::exp(LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * std::log(x) +
                                b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) {
    const double lower = front * BetaContinuedFraction(x, a, b) / a;
    return {lower, 1 - lower};
  }
  const double upper = front * BetaContinuedFraction(1 - x, b, a) / b;
  return {1 - upper, upper};
}

// P(t_lo < t ≤ t_hi) from the tails at its ends, whichever is smaller.
double Mass(const BetaTails& lo, const BetaTails& hi) {
  return hi.lower < 0.5 ? hi.lower - lo.lower : lo.upper - hi.upper;
}

// The p-quantile of t ~ Beta(a, b) by bisection on the accurate tail.
double Quantile(double p, double a, double b) {
  double lo = 0, hi = 1;
  for (int i = 0; i < 200 && lo < hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    const BetaTails t = Tails(mid, a, b);
    const bool below = p <= 0.5 ? t.lower < p : t.upper > 1 - p;
    (below ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Levels of a = sqrt(t) at the (j + ½)/L quantiles.
std::vector<double> QuantileLevels(double alpha, double beta, int levels) {
  std::vector<double> q(static_cast<size_t>(levels));
  for (int j = 0; j < levels; ++j) {
    q[j] = std::sqrt(Quantile((j + 0.5) / levels, alpha, beta));
  }
  return q;
}

// Lloyd–Max for a = sqrt(t): cells between midpoints of the levels, each
// level moved to its cell's mean E[a | cell] = R · P'(cell) / P(cell), where
// P' is the Beta(α + ½, β) mass of the cell and R = B(α + ½, β) / B(α, β).
// Stops when no level moves by more than 1e-10 of the levels' span (far
// below the F32 the format stores).
std::vector<double> LloydMaxLevels(double alpha, double beta, int levels) {
  std::vector<double> q = QuantileLevels(alpha, beta, levels);
  const double ratio = std::exp(LogGamma(alpha + 0.5) + LogGamma(alpha + beta) -
                                LogGamma(alpha) - LogGamma(alpha + beta + 0.5));
  const size_t cells = q.size();
  std::vector<BetaTails> p(cells + 1), p_half(cells + 1);
  for (int iteration = 0; iteration < 1000 && cells > 1; ++iteration) {
    for (size_t j = 0; j <= cells; ++j) {
      const double a = j == 0 ? 0.0 : j == cells ? 1.0 : 0.5 * (q[j - 1] + q[j]);
      p[j] = Tails(a * a, alpha, beta);
      p_half[j] = Tails(a * a, alpha + 0.5, beta);
    }
    double moved = 0;
    for (size_t j = 0; j < cells; ++j) {
      const double mass = Mass(p[j], p[j + 1]);
      if (!(mass > 1e-300)) continue;
      const double next = ratio * Mass(p_half[j], p_half[j + 1]) / mass;
      moved = std::max(moved, std::fabs(next - q[j]));
      q[j] = next;
    }
    if (moved <= 1e-10 * (q.back() - q.front())) break;
  }
  return q;
}

}  // namespace

double RegularizedIncompleteBeta(double x, double a, double b) { return Tails(x, a, b).lower; }

std::vector<double> PvqGainLevels(quant::PvqGainLevels design, int dim, int64_t n, int levels) {
  if (n <= dim) return std::vector<double>(static_cast<size_t>(levels), 1.0);
  const double alpha = 0.5 * dim, beta = 0.5 * static_cast<double>(n - dim);
  return design == quant::PvqGainLevels::kLloydMax ? LloydMaxLevels(alpha, beta, levels)
                                            : QuantileLevels(alpha, beta, levels);
}

}  // namespace glvq::cpu
