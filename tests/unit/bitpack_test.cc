#include "common/packed/bitpack.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "common/packed/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace glvq {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> RandomCodes(size_t n, int bits, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, (1 << bits) - 1);
  std::vector<uint8_t> codes(n);
  for (uint8_t& c : codes) c = static_cast<uint8_t>(dist(rng));
  return codes;
}

std::vector<size_t> TestLengths() {
  std::vector<size_t> lengths = {0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000};
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> dist(0, 5000);
  for (int i = 0; i < 8; ++i) lengths.push_back(dist(rng));
  return lengths;
}

TEST(BitpackTest, PackedBytesRoundsUp) {
  EXPECT_EQ(PackedBytes(0, 3), 0u);
  EXPECT_EQ(PackedBytes(1, 1), 1u);
  EXPECT_EQ(PackedBytes(8, 1), 1u);
  EXPECT_EQ(PackedBytes(9, 1), 2u);
  EXPECT_EQ(PackedBytes(3, 3), 2u);
  EXPECT_EQ(PackedBytes(8, 3), 3u);
  EXPECT_EQ(PackedBytes(5, 8), 5u);
  EXPECT_EQ(PackedBytes(172 * 12, 5), 1290u);
}

// b = 3, codes 1..7,0: code k is bits 3k..3k+2, so the three bytes are the
// little-endian 24-bit value with octal digits 07654321 = 0x1F58D1.
TEST(BitpackTest, HandComputedLsbFirstLayout) {
  const std::vector<uint8_t> codes = {1, 2, 3, 4, 5, 6, 7, 0};
  const std::vector<std::byte> expected = {std::byte{0xD1}, std::byte{0x58},
                                           std::byte{0x1F}};
  std::vector<std::byte> fast(3), ref(3);
  ASSERT_TRUE(PackCodes(codes, 3, fast).ok());
  ASSERT_TRUE(PackCodesRef(codes, 3, ref).ok());
  EXPECT_EQ(fast, expected);
  EXPECT_EQ(ref, expected);
}

TEST(BitpackTest, HandComputedTailAndPadding) {
  // b = 5, codes {31, 1, 2}: stream bits 0..15 (LSB first) are
  // 11111 10000 01000 and one zero padding bit, so byte 0 has bits 0..5 set
  // (0x3F) and byte 1 only bit 3 (stream bit 11, 0x08).
  const std::vector<uint8_t> codes = {31, 1, 2};
  const std::vector<std::byte> expected = {std::byte{0x3F}, std::byte{0x08}};
  std::vector<std::byte> out(2, std::byte{0xFF});
  ASSERT_TRUE(PackCodes(codes, 5, out).ok());
  EXPECT_EQ(out, expected);
}

TEST(BitpackTest, RoundTripAndFastEqualsRefAtEveryWidth) {
  uint32_t seed = 1;
  for (int bits = 1; bits <= 8; ++bits) {
    for (size_t n : TestLengths()) {
      SCOPED_TRACE(testing::Message() << "bits=" << bits << " n=" << n);
      const std::vector<uint8_t> codes = RandomCodes(n, bits, seed++);
      std::vector<std::byte> fast(PackedBytes(n, bits), std::byte{0xA5});
      std::vector<std::byte> ref(PackedBytes(n, bits), std::byte{0x5A});
      ASSERT_TRUE(PackCodes(codes, bits, fast).ok());
      ASSERT_TRUE(PackCodesRef(codes, bits, ref).ok());
      ASSERT_EQ(fast, ref);

      std::vector<uint8_t> back_fast(n, 0xEE), back_ref(n, 0xEE);
      ASSERT_TRUE(UnpackCodes(fast, bits, back_fast).ok());
      ASSERT_TRUE(UnpackCodesRef(fast, bits, back_ref).ok());
      EXPECT_EQ(back_fast, codes);
      EXPECT_EQ(back_ref, codes);
    }
  }
}

TEST(BitpackTest, UnpackIgnoresPaddingBits) {
  const std::vector<uint8_t> codes = {1, 0, 1};
  std::vector<std::byte> packed(1);
  ASSERT_TRUE(PackCodes(codes, 2, packed).ok());
  packed[0] |= std::byte{0xC0};  // the 4th (absent) code's bits
  std::vector<uint8_t> back(3);
  ASSERT_TRUE(UnpackCodes(packed, 2, back).ok());
  EXPECT_EQ(back, codes);
}

TEST(BitpackTest, ExtractCodeAgreesWithUnpack) {
  for (uint32_t bits = 1; bits <= 8; ++bits) {
    const size_t n = 1000 + bits;
    const std::vector<uint8_t> codes = RandomCodes(n, static_cast<int>(bits), 100 + bits);
    std::vector<std::byte> packed(PackedBytes(n, static_cast<int>(bits)));
    ASSERT_TRUE(PackCodes(codes, static_cast<int>(bits), packed).ok());
    // Exactly-sized copy so that reading past the stream would be caught by ASan.
    std::vector<uint8_t> stream(packed.size());
    std::memcpy(stream.data(), packed.data(), packed.size());
    for (uint64_t k = 0; k < n; ++k) {
      ASSERT_EQ(packed::ExtractCode(stream.data(), k, bits), codes[k])
          << "bits=" << bits << " k=" << k;
    }
  }
}

TEST(BitpackTest, RejectsBitsOutOfRange) {
  std::vector<uint8_t> codes(8, 0);
  std::vector<std::byte> out(8);
  for (int bits : {0, 9, -1}) {
    absl::Status s = PackCodes(codes, bits, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("1..8"));
    EXPECT_EQ(UnpackCodes(out, bits, codes).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(PackCodesRef(codes, bits, out).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(UnpackCodesRef(out, bits, codes).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(BitpackTest, RejectsCodesThatDoNotFit) {
  for (int bits = 1; bits <= 7; ++bits) {
    for (size_t where : {size_t{0}, size_t{5}, size_t{17}}) {  // block and tail
      std::vector<uint8_t> codes(19, 0);
      codes[where] = static_cast<uint8_t>(1 << bits);
      std::vector<std::byte> out(PackedBytes(codes.size(), bits));
      absl::Status fast = PackCodes(codes, bits, out);
      absl::Status ref = PackCodesRef(codes, bits, out);
      EXPECT_EQ(fast.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(ref.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(fast.message(), HasSubstr("index " + std::to_string(where)));
    }
  }
}

TEST(BitpackTest, RejectsWrongBufferSizes) {
  std::vector<uint8_t> codes(10, 1);
  std::vector<std::byte> small(PackedBytes(10, 3) - 1), large(PackedBytes(10, 3) + 1);
  EXPECT_EQ(PackCodes(codes, 3, small).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PackCodes(codes, 3, large).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UnpackCodes(small, 3, codes).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UnpackCodes(large, 3, codes).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PackCodesRef(codes, 3, small).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UnpackCodesRef(large, 3, codes).code(), absl::StatusCode::kInvalidArgument);
}

TEST(LayoutTest, GroupGeometry) {
  EXPECT_EQ(packed::NumColumnGroups(172, 128), 2u);
  EXPECT_EQ(packed::NumColumnGroups(256, 128), 2u);
  EXPECT_EQ(packed::ColumnGroupWidth(172, 128, 0), 128u);
  EXPECT_EQ(packed::ColumnGroupWidth(172, 128, 1), 44u);
  EXPECT_EQ(packed::GroupCodeBytes(12, 44, 3), 198u);  // 1584 bits
  EXPECT_EQ(packed::GroupCodeBytes(3, 3, 3), 4u);      // 27 bits
  EXPECT_EQ(packed::CodeBitPosition(5, 3), 15u);
}

}  // namespace
}  // namespace glvq
