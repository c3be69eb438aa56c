#include "common/base/crc32c.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/base/random.h"

namespace glvq {
namespace {

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) appendix B.4 and the classic check value.
  EXPECT_EQ(Crc32c(Bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(Bytes(std::string(32, '\0'))), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(Bytes(std::string(32, '\xFF'))), 0x62A8AB43u);
  EXPECT_EQ(Crc32c({}), 0u);
}

TEST(Crc32c, HardwareMatchesPortableAndExtendsAcrossSplits) {
  Rng rng(3);
  std::vector<std::byte> data(4099);
  for (auto& b : data) b = static_cast<std::byte>(rng.NextU64());
  const std::span<const std::byte> all(data);
  for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 4099u}) {
    EXPECT_EQ(Crc32c(all.first(len)), Crc32cExtendPortable(0, all.first(len))) << len;
  }
  const uint32_t whole = Crc32c(all);
  for (size_t split : {0u, 1u, 13u, 2048u, 4099u}) {
    EXPECT_EQ(Crc32cExtend(Crc32c(all.first(split)), all.subspan(split)), whole) << split;
  }
}

}  // namespace
}  // namespace glvq
