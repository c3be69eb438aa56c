// PVQ's codebook (docs/algorithms.md §2, docs/format.md §4.7): N(D, K) against
// the closed form and the listed values, the enumeration as a bijection,
// the pulse projection, the gain levels on the Beta density, and how a
// rate becomes (K, gain bits).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <set>
#include <vector>

#include "common/base/random.h"
#include "common/packed/pvq.h"
#include "gmock/gmock.h"
#include "worker/cpu/pvq_gain.h"
#include "worker/cpu/pvq_projection.h"
#include "worker/cpu/pvq_rate.h"

namespace glvq {
namespace {

using ::testing::HasSubstr;
using Words = std::array<uint64_t, pvq::kMaxIndexWords>;

// ---------------------------------------------------------------------------
// Counting

// A small unsigned big integer (base 2^32 digits) for the closed form.
class Big {
 public:
  explicit Big(uint64_t v) : digits_{v & 0xFFFFFFFF, v >> 32} {}
  void Multiply(uint64_t m) {  // m < 2^32
    uint64_t carry = 0;
    for (uint64_t& d : digits_) {
      const uint64_t p = d * m + carry;
      d = p & 0xFFFFFFFF;
      carry = p >> 32;
    }
    while (carry != 0) digits_.push_back(carry & 0xFFFFFFFF), carry >>= 32;
  }
  void Divide(uint64_t m) {  // exact, m < 2^32
    uint64_t rest = 0;
    for (size_t i = digits_.size(); i-- > 0;) {
      const uint64_t cur = (rest << 32) | digits_[i];
      digits_[i] = cur / m;
      rest = cur % m;
    }
    ASSERT_EQ(rest, 0u);
  }
  void Add(const Big& o) {
    digits_.resize(std::max(digits_.size(), o.digits_.size()) + 1, 0);
    uint64_t carry = 0;
    for (size_t i = 0; i < digits_.size(); ++i) {
      const uint64_t s = digits_[i] + (i < o.digits_.size() ? o.digits_[i] : 0) + carry;
      digits_[i] = s & 0xFFFFFFFF;
      carry = s >> 32;
    }
  }
  Words ToWords() const {
    Words w{};
    for (size_t i = 0; i < digits_.size(); ++i) {
      if (digits_[i] == 0) continue;
      EXPECT_LT(i / 2, w.size());
      if (i / 2 < w.size()) w[i / 2] |= digits_[i] << (32 * (i % 2));
    }
    return w;
  }

 private:
  std::vector<uint64_t> digits_;
};

// Σ_{i=1}^{min(D,K)} 2^i C(D,i) C(K−1,i−1), term by term:
// t_1 = 2D, t_{i+1} = t_i · 2(D−i)(K−i) / (i(i+1)).
Words ClosedForm(int d, int k) {
  Big term(2 * static_cast<uint64_t>(d)), sum(0);
  for (int i = 1; i <= std::min(d, k); ++i) {
    sum.Add(term);
    term.Multiply(2 * static_cast<uint64_t>(d - i) * static_cast<uint64_t>(k - i));
    term.Divide(static_cast<uint64_t>(i) * static_cast<uint64_t>(i + 1));
  }
  return sum.ToWords();
}

uint64_t Count(int d, int k) {
  auto s = pvq::CountPyramid(d, k);
  EXPECT_TRUE(s.ok()) << s.status();
  for (int i = 1; i < pvq::kMaxIndexWords; ++i) EXPECT_EQ(s->count[i], 0u);
  return s->count[0];
}

TEST(PvqCount, ListedValues) {
  const uint64_t n8[] = {16, 128, 688, 2816, 9424, 27008, 68464, 157184};
  for (int k = 1; k <= 8; ++k) EXPECT_EQ(Count(8, k), n8[k - 1]) << "K=" << k;
  for (int k = 1; k <= 50; ++k) {
    EXPECT_EQ(Count(2, k), 4u * k);
    EXPECT_EQ(Count(3, k), 4u * k * k + 2);
  }
  for (int d = 1; d <= 256; ++d) EXPECT_EQ(Count(d, 1), 2u * d);
  EXPECT_EQ(Count(1, 4096), 2u);
}

TEST(PvqCount, MatchesTheClosedFormBeyond64Bits) {
  for (int d = 1; d <= 24; ++d) {
    for (int k = 1; k <= 24; ++k) {
      ASSERT_EQ(pvq::CountPyramid(d, k)->count, ClosedForm(d, k)) << d << ", " << k;
    }
  }
  // ~2 bits per weight at D = 64, 128, 256 (2, 4 and 8 words), and the
  // most pulses at D = 32.
  for (auto [d, k] : {std::array{64, 43}, std::array{128, 84}, std::array{256, 166},
                      std::array{32, 4096}}) {
    auto s = pvq::CountPyramid(d, k);
    ASSERT_TRUE(s.ok()) << s.status();
    const Words n = ClosedForm(d, k);
    EXPECT_EQ(s->count, n) << d << ", " << k;
    // ⌈log2 N⌉: N is even and, here, not a power of two, so it is N's bit length.
    int top = pvq::kMaxIndexWords - 1;
    while (n[top] == 0) --top;
    EXPECT_EQ(s->index_bits, 64 * top + static_cast<int>(std::bit_width(n[top]))) << d << ", " << k;
  }
  EXPECT_EQ(pvq::CountPyramid(64, 43)->index_bits, 128);
  EXPECT_EQ(pvq::CountPyramid(128, 84)->index_bits, 256);
  EXPECT_EQ(pvq::CountPyramid(256, 166)->index_bits, 512);
}

TEST(PvqCount, BoundsAreEnforced) {
  EXPECT_THAT(pvq::CountPyramid(0, 4).status().message(), HasSubstr("dimension D"));
  EXPECT_THAT(pvq::CountPyramid(8, 0).status().message(), HasSubstr("pulses K"));
  EXPECT_THAT(pvq::CountPyramid(257, 4).status().message(), HasSubstr("dimension D"));
  EXPECT_THAT(pvq::CountPyramid(8, 4097).status().message(), HasSubstr("pulses K"));
  const absl::Status big = pvq::CountPyramid(256, 200).status();
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.message(), HasSubstr("more than 512 bits"));
  EXPECT_EQ(pvq::Enumeration::Create(8, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pvq::Enumeration::Create(0, 8).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PvqCount, LargestPulsesFitsTheBudget) {
  // N(8, 6) = 27008 takes 15 bits, N(8, 7) = 68464 17.
  pvq::PulseLimit l = pvq::LargestPulses(8, 16);
  EXPECT_EQ(l.pulses, 6);
  EXPECT_EQ(l.index_bits, 15);
  EXPECT_FALSE(l.capped);
  EXPECT_EQ(pvq::LargestPulses(8, 3).pulses, 0);  // N(8, 1) = 16 needs 4 bits
  EXPECT_EQ(pvq::LargestPulses(8, 4).pulses, 1);
  EXPECT_TRUE(pvq::LargestPulses(128, 600).capped);  // beyond 512 index bits
  EXPECT_TRUE(pvq::LargestPulses(2, 20).capped);     // beyond 4096 pulses
  for (int d : {2, 8, 16, 64, 128}) {
    for (int budget : {d, 2 * d, 3 * d}) {
      if (budget > pvq::kMaxIndexBits) continue;
      const pvq::PulseLimit limit = pvq::LargestPulses(d, budget);
      ASSERT_GT(limit.pulses, 0);
      EXPECT_EQ(pvq::CountPyramid(d, limit.pulses)->index_bits, limit.index_bits);
      EXPECT_LE(limit.index_bits, budget);
      EXPECT_GT(pvq::CountPyramid(d, limit.pulses + 1)->index_bits, budget);
    }
  }
}

// ---------------------------------------------------------------------------
// Enumeration

int L1(const std::vector<int32_t>& y) {
  int s = 0;
  for (int32_t v : y) s += std::abs(v);
  return s;
}

TEST(PvqEnumeration, ExhaustiveBijectionForSmallPyramids) {
  for (int d = 1; d <= 6; ++d) {
    for (int k = 1; k <= 7; ++k) {
      auto e = pvq::Enumeration::Create(d, k);
      ASSERT_TRUE(e.ok()) << e.status();
      ASSERT_EQ(e->words(), 1);
      const uint64_t n = e->Count(d, k)[0];
      std::set<std::vector<int32_t>> seen;
      std::vector<int32_t> y(static_cast<size_t>(d));
      for (uint64_t index = 0; index < n; ++index) {
        ASSERT_TRUE(e->InRange(&index));
        e->Decode(&index, y.data());
        ASSERT_EQ(L1(y), k) << d << ", " << k << ", " << index;
        uint64_t back = ~uint64_t{0};
        e->Encode(y.data(), &back);
        ASSERT_EQ(back, index) << d << ", " << k;
        seen.insert(y);
      }
      EXPECT_EQ(seen.size(), n);
      EXPECT_FALSE(e->InRange(&n));
    }
  }
}

TEST(PvqEnumeration, OrderIsZeroPlusMinusFromTheFirstPosition) {
  auto e = pvq::Enumeration::Create(3, 2);
  ASSERT_TRUE(e.ok());
  std::vector<std::vector<int32_t>> order;
  std::vector<int32_t> y(3);
  for (uint64_t i = 0; i < 6; ++i) {
    e->Decode(&i, y.data());
    order.push_back(y);
  }
  // y0 = 0 first: then y1 = 0, +1, −1, +2, −2 with the rest on y2.
  EXPECT_EQ(order[0], (std::vector<int32_t>{0, 0, 2}));
  EXPECT_EQ(order[1], (std::vector<int32_t>{0, 0, -2}));
  EXPECT_EQ(order[2], (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(order[3], (std::vector<int32_t>{0, 1, -1}));
  EXPECT_EQ(order[4], (std::vector<int32_t>{0, -1, 1}));
  EXPECT_EQ(order[5], (std::vector<int32_t>{0, -1, -1}));
  uint64_t last = e->Count(3, 2)[0] - 1;  // the largest index: −2, 0, 0
  e->Decode(&last, y.data());
  EXPECT_EQ(y, (std::vector<int32_t>{-2, 0, 0}));
}

// A random point of P(D, K): K pulses on random coordinates, random signs.
std::vector<int32_t> RandomPoint(int d, int k, Rng& rng) {
  std::vector<int32_t> y(static_cast<size_t>(d), 0);
  for (int p = 0; p < k; ++p) ++y[rng.Below(static_cast<uint64_t>(d))];
  for (int32_t& v : y) {
    if (rng.Below(2) == 1) v = -v;
  }
  return y;
}

TEST(PvqEnumeration, RandomRoundTripsOnMultiWordIndices) {
  Rng rng(11);
  for (auto [d, k, words] : {std::array{32, 22, 1}, std::array{64, 43, 2},
                             std::array{128, 84, 4}, std::array{128, 300, 8},
                             std::array{256, 166, 8}}) {
    auto e = pvq::Enumeration::Create(d, k);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->words(), words) << d << ", " << k;
    std::vector<uint64_t> index(static_cast<size_t>(words));
    std::vector<int32_t> back(static_cast<size_t>(d));
    std::set<std::vector<uint64_t>> indices;
    for (int t = 0; t < 2000; ++t) {
      // Every tenth point concentrates its pulses: large |y_i| exercise the
      // search over many magnitudes.
      const std::vector<int32_t> y = t % 10 == 0 ? RandomPoint(4, k, rng) : RandomPoint(d, k, rng);
      std::vector<int32_t> full(static_cast<size_t>(d), 0);
      std::copy(y.begin(), y.end(), full.begin() + (d - static_cast<int>(y.size())) / 2);
      e->Encode(full.data(), index.data());
      ASSERT_TRUE(e->InRange(index.data()));
      e->Decode(index.data(), back.data());
      ASSERT_EQ(back, full) << d << ", " << k << ", point " << t;
      indices.insert(index);
    }
    EXPECT_GT(indices.size(), 1900u);
    // The extremes: (0, …, 0, K) is index 0, (−K, 0, …, 0) is N − 1.
    std::vector<int32_t> y(static_cast<size_t>(d), 0);
    y.back() = k;
    e->Encode(y.data(), index.data());
    EXPECT_EQ(index, std::vector<uint64_t>(static_cast<size_t>(words), 0));
  }
}

TEST(PvqEnumeration, IndexBitsRoundTripThroughStreams) {
  std::vector<uint8_t> stream(64, 0);
  const uint64_t index[2] = {0xFEDCBA9876543210ull, 0x2A};
  pvq::PutIndex(stream.data(), 3, index, 70);
  pvq::PutBits(stream.data(), 73, 5, 3);
  uint64_t back[2];
  pvq::GetIndex(stream.data(), 3, 70, 2, back);
  EXPECT_EQ(back[0], index[0]);
  EXPECT_EQ(back[1], index[1]);
  EXPECT_EQ(pvq::GetBits(stream.data(), 73, 3), 5u);
  EXPECT_EQ(stream[0] & 7, 0);      // bits before the record untouched
  EXPECT_EQ(stream[0] >> 3, 0x10);  // the index's low 5 bits, 10000b
}

// ---------------------------------------------------------------------------
// Projection

TEST(PvqProjection, LandsOnThePyramidWithTheSignsOfX) {
  Rng rng(12);
  for (int t = 0; t < 500; ++t) {
    const int d = 2 + static_cast<int>(rng.Below(60)), k = 1 + static_cast<int>(rng.Below(90));
    std::vector<double> x(static_cast<size_t>(d));
    for (double& v : x) v = rng.Normal();
    std::vector<int32_t> y(static_cast<size_t>(d));
    cpu::ProjectToPyramid(x, k, y);
    ASSERT_EQ(L1(y), k);
    for (int i = 0; i < d; ++i) ASSERT_GE(x[i] * y[i], 0.0) << i;
  }
}

TEST(PvqProjection, FindsPointsOnTheirOwnDirection) {
  Rng rng(13);
  for (int t = 0; t < 200; ++t) {
    const std::vector<int32_t> y0 = RandomPoint(16, 20, rng);
    std::vector<double> x(y0.begin(), y0.end());
    for (double& v : x) v *= 0.37;
    std::vector<int32_t> y(16);
    cpu::ProjectToPyramid(x, 20, y);
    ASSERT_EQ(y, y0);
  }
}

// The greedy search is not exact; measured on P(4, 5): it finds the best
// point most of the time and is never far off.
TEST(PvqProjection, GreedyIsNearTheExhaustiveBest) {
  Rng rng(14);
  const int d = 4, k = 5;
  auto e = pvq::Enumeration::Create(d, k);
  double worst = 1, sum = 0;
  int exact = 0;
  for (int t = 0; t < 300; ++t) {
    std::vector<double> x(d);
    for (double& v : x) v = rng.Normal();
    auto cosine = [&](const std::vector<int32_t>& y) {
      double xy = 0, xx = 0, yy = 0;
      for (int i = 0; i < d; ++i) xy += x[i] * y[i], xx += x[i] * x[i], yy += double(y[i]) * y[i];
      return xy / std::sqrt(xx * yy);
    };
    double best = -1;
    std::vector<int32_t> y(d);
    for (uint64_t i = 0; i < e->Count(d, k)[0]; ++i) {
      e->Decode(&i, y.data());
      best = std::max(best, cosine(y));
    }
    cpu::ProjectToPyramid(x, k, y);
    const double ratio = cosine(y) / best;
    worst = std::min(worst, ratio);
    sum += ratio;
    exact += ratio > 1 - 1e-12;
  }
  std::printf("[measured] greedy vs exhaustive on P(4, 5): best found %d of 300, mean cosine "
              "ratio %.5f, worst %.4f\n", exact, sum / 300, worst);
  EXPECT_GT(exact, 240);
  EXPECT_GT(sum / 300, 0.998);
  EXPECT_GT(worst, 0.95);
}

TEST(PvqProjection, ZeroVectorsAndOneCoordinateAreDefined) {
  std::vector<int32_t> y(8, 7);
  const std::vector<double> zero(8, 0.0);
  cpu::ProjectToPyramid(zero, 5, y);
  EXPECT_EQ(y, (std::vector<int32_t>{5, 0, 0, 0, 0, 0, 0, 0}));
  std::vector<int32_t> one(1);
  cpu::ProjectToPyramid(std::vector<double>{-0.3}, 4, one);
  EXPECT_EQ(one[0], -4);
}

// ---------------------------------------------------------------------------
// Gain levels

TEST(PvqGain, IncompleteBetaClosedForms) {
  for (double x : {0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0}) {
    for (double a : {0.5, 1.0, 2.5, 7.0}) {
      EXPECT_NEAR(cpu::RegularizedIncompleteBeta(x, a, 1.0), std::pow(x, a), 1e-13);
      EXPECT_NEAR(cpu::RegularizedIncompleteBeta(x, 1.0, a), 1 - std::pow(1 - x, a), 1e-13);
    }
  }
  for (double a : {0.5, 3.0, 40.0, 2000.0}) {
    EXPECT_NEAR(cpu::RegularizedIncompleteBeta(0.5, a, a), 0.5, 1e-10);
  }
}

TEST(PvqGain, QuantileLevelsOfAUniformShare) {
  // D = 2 of n = 4: a² ~ Beta(1, 1) is uniform, so level j = sqrt((j + ½)/L).
  const std::vector<double> q =
      cpu::PvqGainLevels(quant::PvqGainLevels::kBetaQuantile, 2, 4, 8);
  ASSERT_EQ(q.size(), 8u);
  for (int j = 0; j < 8; ++j) EXPECT_NEAR(q[j], std::sqrt((j + 0.5) / 8), 1e-12);
  EXPECT_EQ(cpu::PvqGainLevels(quant::PvqGainLevels::kLloydMax, 16, 16, 4),
            std::vector<double>(4, 1.0));
}

// E[(a − Q(a))²] for a = sqrt(t), t ~ Beta(D/2, (n−D)/2), by midpoint
// integration on a fine grid of t.
double GainMse(const std::vector<double>& q, int d, int n) {
  const double alpha = d / 2.0, beta = (n - d) / 2.0;
  const double log_b = std::lgamma(alpha) + std::lgamma(beta) - std::lgamma(alpha + beta);
  const int steps = 400000;
  double mse = 0, mass = 0;
  for (int i = 0; i < steps; ++i) {
    const double t = (i + 0.5) / steps;
    const double p = std::exp((alpha - 1) * std::log(t) + (beta - 1) * std::log1p(-t) - log_b);
    const double a = std::sqrt(t);
    double e = INFINITY;
    for (double level : q) e = std::min(e, (a - level) * (a - level));
    mse += p * e / steps;
    mass += p / steps;
  }
  EXPECT_NEAR(mass, 1.0, 1e-4);
  return mse;
}

TEST(PvqGain, LloydMaxIsACentroidFixedPointAndBeatsQuantiles) {
  const int d = 8, n = 64;
  for (int levels : {2, 4, 16}) {
    const auto lm = cpu::PvqGainLevels(quant::PvqGainLevels::kLloydMax, d, n, levels);
    const auto bq = cpu::PvqGainLevels(quant::PvqGainLevels::kBetaQuantile, d, n, levels);
    ASSERT_TRUE(std::is_sorted(lm.begin(), lm.end()));
    ASSERT_TRUE(std::is_sorted(bq.begin(), bq.end()));
    const double mse_lm = GainMse(lm, d, n), mse_bq = GainMse(bq, d, n);
    EXPECT_LE(mse_lm, mse_bq * 1.0001) << levels;
    // Nudging any level makes Lloyd–Max worse.
    for (size_t j = 0; j < lm.size(); ++j) {
      for (double step : {-2e-3, 2e-3}) {
        std::vector<double> moved = lm;
        moved[j] += step;
        EXPECT_GE(GainMse(moved, d, n), mse_lm * (1 - 1e-6)) << levels << ", " << j;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Rate

TEST(PvqRate, LargestKThatFitsAndFractionalRates) {
  auto c = pvq::RateCandidates(8, 2.0, 1);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ(c->front().pulses, 6);  // 15 + 1 bits
  EXPECT_EQ(c->front().record_bits(), 16);
  for (double bits : {1.5, 1.75, 2.25, 2.5, 3.0, 3.5, 4.0}) {
    for (int d : {8, 16, 32, 64}) {
      auto all = pvq::RateCandidates(d, bits, -1);
      ASSERT_TRUE(all.ok()) << all.status();
      for (const pvq::Rate& r : *all) {
        EXPECT_LE(r.record_bits(), std::floor(bits * d + 1e-9)) << bits << ", " << d;
        EXPECT_GT(pvq::CountPyramid(d, r.pulses + 1)->index_bits + r.gain_bits,
                  std::floor(bits * d + 1e-9));
      }
    }
  }
}

TEST(PvqRate, UnreachableAndOutOfBoundRatesAreRejected) {
  // D = 4 at 1 bit: 4 bits per vector; P(4, 1) alone needs 3.
  auto r = pvq::RateCandidates(4, 1.0, 2);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("rate unreachable"));
  r = pvq::RateCandidates(128, 5.0, -1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("beyond its bounds"));
  EXPECT_TRUE(pvq::RateCandidates(4, 1.0, -1).ok());
}

TEST(PvqRate, TrialPicksTheBestSplitDeterministically) {
  quant::QuantizerConfig c;
  c.method = quant::Method::kPvq;
  c.bits = 2;
  c.dim = 8;
  auto chosen = cpu::ChoosePvqRate(c);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  // At D = 8 and 2 bits one gain bit beside K = 6 beats every other split.
  EXPECT_EQ(chosen->gain_bits, 1);
  EXPECT_EQ(chosen->pulses, 6);
  EXPECT_EQ(cpu::ChoosePvqRate(c)->gain_bits, chosen->gain_bits);
}

}  // namespace
}  // namespace glvq
