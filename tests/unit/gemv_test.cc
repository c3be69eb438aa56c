// The packed GEMV kernels (kernels/gemv.h) against their oracle, GemvRef
// (DequantizeRef in double times x), on random e8p tensors and rtn tensors: 2- and 4-bit
// (lookup tables), 3- and 8-bit and unaligned group rows (plain loop),
// ragged shapes such as 172 and 576 columns, mixed widths per group, and
// RHT-stored weights.
#include "kernels/gemv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace glvq::kernels {
namespace {

// A valid random rtn tensor; bits[g] cycles through `bits`.
QuantizedTensor RandomRtn(int64_t rows, int64_t cols, int64_t group_size,
                          const std::vector<int>& bits, bool rht, uint64_t seed) {
  std::mt19937_64 rng(seed);
  QuantizedTensor t;
  t.name = "w";
  t.method = std::string(kMethodRtn);
  t.rows = rows, t.cols = cols, t.group_size = group_size, t.dim = 1;
  const int64_t groups = t.NumGroups();
  std::vector<uint8_t> unpacked;
  for (int64_t g = 0; g < groups; ++g) {
    const int b = bits[static_cast<size_t>(g) % bits.size()];
    t.bits.push_back(static_cast<uint8_t>(b));
    std::uniform_int_distribution<int> code(0, (1 << b) - 1);
    for (int64_t i = 0; i < rows * t.GroupWidth(g); ++i) unpacked.push_back(uint8_t(code(rng)));
  }
  EXPECT_TRUE(PackGroupCodes(unpacked, &t).ok());
  std::uniform_real_distribution<float> scale(0.01f, 0.1f), zero(-2.0f, 10.0f);
  for (int64_t i = 0; i < groups * rows; ++i) {
    t.scale.push_back(scale(rng));
    t.zero.push_back(zero(rng));
  }
  if (rht) t.rht_seed = {int64_t(seed * 7 + 1), int64_t(seed * 13 + 5)};
  EXPECT_TRUE(ValidateQuantizedTensor(t).ok()) << ValidateQuantizedTensor(t);
  return t;
}

// A valid random e8p tensor (every 16-bit code is valid).
QuantizedTensor RandomE8p(int64_t rows, int64_t cols, int64_t group_size, bool rht, uint64_t seed) {
  std::mt19937_64 rng(seed);
  QuantizedTensor t;
  t.name = "w";
  t.method = std::string(kMethodE8p);
  t.rows = rows, t.cols = cols, t.group_size = group_size, t.dim = 8;
  t.bits.assign(static_cast<size_t>(t.NumGroups()), 2);
  std::vector<uint16_t> codes;
  for (int64_t g = 0; g < t.NumGroups(); ++g) {
    for (int64_t i = 0; i < rows * E8pVectorsPerRow(t.GroupWidth(g)); ++i) {
      codes.push_back(static_cast<uint16_t>(rng()));
    }
  }
  EXPECT_TRUE(PackE8pCodes(codes, &t).ok());
  std::uniform_real_distribution<float> scale(0.01f, 0.1f);
  for (int64_t g = 0; g < t.NumGroups(); ++g) t.scale.push_back(scale(rng));
  if (rht) t.rht_seed = {int64_t(seed * 3 + 2), int64_t(seed * 11 + 7)};
  EXPECT_TRUE(ValidateQuantizedTensor(t).ok()) << ValidateQuantizedTensor(t);
  return t;
}

std::vector<float> RandomVector(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  return x;
}

// |y − y_ref| within F32 accumulation error of Σ|w x| (the dense weights'
// magnitudes bound it), with poisoned outputs so that every row is written.
void ExpectMatchesOracle(const QuantizedTensor& t, uint64_t seed) {
  const std::vector<float> x = RandomVector(t.cols, seed);
  std::vector<float> want(static_cast<size_t>(t.rows)), got(want.size(), NAN);
  ASSERT_TRUE(GemvRef(t, x, want).ok());
  ASSERT_TRUE(Gemv(t, x, got).ok());
  std::vector<float> dense(static_cast<size_t>(t.rows * t.cols));
  ASSERT_TRUE(DequantizeRef(t, dense).ok());
  for (int64_t r = 0; r < t.rows; ++r) {
    double magnitude = 0;
    for (int64_t c = 0; c < t.cols; ++c) magnitude += std::abs(dense[r * t.cols + c] * x[c]);
    ASSERT_TRUE(std::isfinite(got[r])) << "row " << r << " not written";
    EXPECT_NEAR(got[r], want[r], 2e-5 * magnitude + 1e-6) << "row " << r;
  }
}

TEST(Gemv, RtnMatchesTheOracle) {
  struct Case {
    int64_t rows, cols, group_size;
    std::vector<int> bits;
    bool rht;
  };
  const Case cases[] = {
      {64, 256, 128, {2}, false},        // LUT, 2-bit
      {64, 256, 128, {4}, false},        // LUT, 4-bit
      {33, 576, 128, {2, 4, 3}, false},  // mixed widths, ragged last group (64 columns)
      {17, 172, 32, {2}, false},         // 172 columns: last group of 12 (aligned for 2 bits)
      {17, 172, 30, {2, 4}, false},      // 30-column groups: 2-bit rows unaligned
      {20, 100, 100, {3, 8}, false},     // plain loop
      {48, 576, 64, {2}, true},          // RHT-stored: transforms of x and y
      {31, 172, 32, {4, 2}, true},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.rows << "x" << c.cols << " gs " << c.group_size
                                      << " rht " << c.rht);
    ExpectMatchesOracle(RandomRtn(c.rows, c.cols, c.group_size, c.bits, c.rht, seed), seed);
    ++seed;
  }
}

TEST(Gemv, E8pMatchesTheOracle) {
  // Whole codewords, short last codewords (172 = 21·8 + 4; 100-column
  // groups), several groups, RHT-stored.
  ExpectMatchesOracle(RandomE8p(40, 256, 128, false, 11), 11);
  ExpectMatchesOracle(RandomE8p(17, 172, 64, false, 12), 12);
  ExpectMatchesOracle(RandomE8p(23, 300, 100, false, 13), 13);
  ExpectMatchesOracle(RandomE8p(48, 576, 128, true, 14), 14);
}

TEST(Gemv, RejectsWrongSizes) {
  const QuantizedTensor t = RandomRtn(8, 64, 32, {2}, false, 3);
  std::vector<float> x(63), y(8);
  EXPECT_EQ(Gemv(t, x, y).code(), absl::StatusCode::kInvalidArgument);
  x.resize(64), y.resize(9);
  EXPECT_EQ(GemvRef(t, x, y).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasFastGemv(t));
}

}  // namespace
}  // namespace glvq::kernels
