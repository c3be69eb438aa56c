// Exactness of the F16 / BF16 conversions: every one of the 65 536 bit
// patterns, rounding ties, overflow, subnormals and NaN handling, checked
// against independent oracles (the compiler's _Float16 and a nearest-value
// search for BF16).
#include "common/tensor/dtype.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/base/random.h"

namespace glvq {
namespace {

bool IsHalfNaN(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }
bool IsBf16NaN(uint16_t b) { return (b & 0x7F80u) == 0x7F80u && (b & 0x7Fu) != 0; }

// Round-to-nearest-even oracle for BF16: pick the nearer of the two
// truncation neighbours, measured in double.
uint16_t Bf16Oracle(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const auto lo = static_cast<uint16_t>(bits >> 16);
  const auto hi = static_cast<uint16_t>(lo + 1);
  if ((bits & 0xFFFFu) == 0) return lo;
  const double x = f;
  const double dlo = std::abs(x - BFloat16ToFloat(lo));
  const double dhi = std::abs(static_cast<double>(BFloat16ToFloat(hi)) - x);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1u) ? hi : lo;
}

TEST(DType, NamesAndSizes) {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kI8, DType::kU8,
                  DType::kI32, DType::kI64, DType::kF64}) {
    ASSERT_EQ(ParseDType(DTypeName(d)), d);
  }
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(DTypeSize(DType::kF64), 8u);
  EXPECT_STREQ(DTypeName(DType::kF64), "F64");
  EXPECT_FALSE(ParseDType("BOOL").has_value());
  EXPECT_FALSE(ParseDType("f32").has_value());
  EXPECT_FALSE(ParseDType("f64").has_value());
  EXPECT_TRUE(IsFloatDType(DType::kBF16));
  EXPECT_FALSE(IsFloatDType(DType::kI32));
  // F64 is for statistics, not weights: quantizers and packed weights refuse it.
  EXPECT_FALSE(IsFloatDType(DType::kF64));
}

TEST(Half, EveryBitPatternWidensExactlyAndRoundTrips) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float f = HalfToFloat(h);
    const float ref = static_cast<float>(std::bit_cast<_Float16>(h));
    if (IsHalfNaN(h)) {
      ASSERT_TRUE(std::isnan(f)) << i;
      ASSERT_EQ(std::signbit(f), (h & 0x8000u) != 0) << i;
      const uint16_t back = FloatToHalf(f);
      ASSERT_TRUE(IsHalfNaN(back)) << i;
      ASSERT_EQ(back & 0x81FFu, h & 0x81FFu) << "sign and low payload kept, " << i;
      continue;
    }
    ASSERT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(ref)) << i;
    ASSERT_EQ(FloatToHalf(f), h) << i;
  }
}

TEST(Half, NarrowingMatchesCompilerAtEveryMidpointAndNeighbour) {
  // For every pair of adjacent finite halves, the midpoint and its float
  // neighbours exercise ties-to-even and the rounding direction.
  for (uint32_t i = 0; i < 0x7C00u; ++i) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const float a = HalfToFloat(static_cast<uint16_t>(i | sign));
      const float b = HalfToFloat(static_cast<uint16_t>((i + 1) | sign));
      const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
      for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f * (sign ? -1 : 1))}) {
        const uint16_t ref = std::bit_cast<uint16_t>(static_cast<_Float16>(x));
        ASSERT_EQ(FloatToHalf(x), ref) << "x=" << x << " i=" << i;
      }
    }
  }
}

TEST(Half, NarrowingMatchesCompilerOnRandomFloats) {
  Rng rng(7);
  for (int i = 0; i < 2'000'000; ++i) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(rng.NextU64()));
    if (std::isnan(x)) continue;
    ASSERT_EQ(FloatToHalf(x), std::bit_cast<uint16_t>(static_cast<_Float16>(x))) << x;
  }
}

TEST(Half, SpecialValues) {
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7BFFu);
  EXPECT_EQ(FloatToHalf(65519.996f), 0x7BFFu);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00u);  // tie rounds to even = Inf
  EXPECT_EQ(FloatToHalf(-1e30f), 0xFC00u);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7C00u);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001u);   // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000u);   // tie to even: zero
  EXPECT_EQ(FloatToHalf(std::ldexp(1.5f, -25)), 0x0001u);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000u);
  EXPECT_TRUE(IsHalfNaN(FloatToHalf(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(IsHalfNaN(FloatToHalf(std::numeric_limits<float>::signaling_NaN())));
}

TEST(BFloat16, EveryBitPatternRoundTrips) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto b = static_cast<uint16_t>(i);
    const float f = BFloat16ToFloat(b);
    ASSERT_EQ(std::bit_cast<uint32_t>(f), i << 16);
    const uint16_t back = FloatToBFloat16(f);
    if (IsBf16NaN(b)) {
      ASSERT_TRUE(IsBf16NaN(back)) << i;
      ASSERT_EQ(back | 0x40u, b | 0x40u) << "only the quiet bit may change, " << i;
    } else {
      ASSERT_EQ(back, b) << i;
    }
  }
}

TEST(BFloat16, NarrowingMatchesNearestEvenOracle) {
  Rng rng(11);
  for (int i = 0; i < 2'000'000; ++i) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(rng.NextU64()));
    if (std::isnan(x) || std::isinf(x)) continue;
    const uint16_t got = FloatToBFloat16(x);
    if ((got & 0x7FFFu) == 0x7F80u) {  // overflow to Inf only past the max finite + half ulp
      ASSERT_GE(std::abs(static_cast<double>(x)), 3.3961775292304787e38) << x;
      continue;
    }
    ASSERT_EQ(got, Bf16Oracle(x)) << x;
  }
  // Ties: exactly halfway between two bfloat16 values.
  EXPECT_EQ(FloatToBFloat16(std::bit_cast<float>(0x3F808000u)), 0x3F80u);  // to even (down)
  EXPECT_EQ(FloatToBFloat16(std::bit_cast<float>(0x3F818000u)), 0x3F82u);  // to even (up)
  EXPECT_EQ(FloatToBFloat16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80u);  // overflow → Inf
}

TEST(Convert, BulkMatchesScalarAndChecksSizes) {
  std::vector<float> values = {0.0f, -1.5f, 3.14159f, 1e-8f, -65504.0f, 1e30f};
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::vector<std::byte> bytes(values.size() * DTypeSize(d));
    ASSERT_TRUE(ConvertFromF32(values, d, bytes).ok());
    std::vector<float> back(values.size());
    ASSERT_TRUE(ConvertToF32(d, bytes, back).ok());
    for (size_t i = 0; i < values.size(); ++i) {
      float expect = values[i];
      if (d == DType::kF16) expect = HalfToFloat(FloatToHalf(values[i]));
      if (d == DType::kBF16) expect = BFloat16ToFloat(FloatToBFloat16(values[i]));
      EXPECT_EQ(std::bit_cast<uint32_t>(back[i]), std::bit_cast<uint32_t>(expect));
    }
  }
  std::vector<std::byte> odd(5);
  std::vector<float> out(2);
  EXPECT_EQ(ConvertToF32(DType::kF16, odd, out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConvertToF32(DType::kI32, std::vector<std::byte>(8), out).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<std::byte> two(2);
  EXPECT_EQ(ConvertFromF32(out, DType::kU8, two).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConvertToF32(DType::kF64, std::vector<std::byte>(16), out).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Convert, ToF64IsExactFromEveryFloatDType) {
  const std::vector<double> f64 = {0.0, -0.0, 1.0 / 3.0, -1e300, 4.9e-324,
                                   std::numeric_limits<double>::infinity()};
  std::vector<std::byte> bytes(f64.size() * 8);
  std::memcpy(bytes.data(), f64.data(), bytes.size());
  std::vector<double> back(f64.size());
  ASSERT_TRUE(ConvertToF64(DType::kF64, bytes, back).ok());
  for (size_t i = 0; i < f64.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint64_t>(back[i]), std::bit_cast<uint64_t>(f64[i])) << i;
  }
  // Narrow dtypes widen exactly: the same values as through F32.
  const std::vector<float> values = {0.1f, -2.5f, 65504.0f, 1e-7f};
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::vector<std::byte> narrow(values.size() * DTypeSize(d));
    ASSERT_TRUE(ConvertFromF32(values, d, narrow).ok());
    std::vector<float> f32(values.size());
    ASSERT_TRUE(ConvertToF32(d, narrow, f32).ok());
    std::vector<double> wide(values.size());
    ASSERT_TRUE(ConvertToF64(d, narrow, wide).ok());
    for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(wide[i], static_cast<double>(f32[i]));
  }
  std::vector<double> two(2);
  EXPECT_EQ(ConvertToF64(DType::kF64, std::vector<std::byte>(15), two).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConvertToF64(DType::kI64, std::vector<std::byte>(16), two).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glvq
