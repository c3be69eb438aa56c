// CRC-32C (Castagnoli), the checksum of result chunks and of the packed
// format's manifest. Uses the SSE4.2 instruction when the CPU has it and a
// slicing-by-8 table otherwise; both give identical values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace glvq {

// Extends `crc` (the value returned for the preceding bytes; 0 to start)
// over `data`. Crc32c(Crc32c(0, a), b) == Crc32c(0, a ++ b).
uint32_t Crc32cExtend(uint32_t crc, std::span<const std::byte> data);

inline uint32_t Crc32c(std::span<const std::byte> data) {
  return Crc32cExtend(0, data);
}

// The portable table implementation, exposed so tests can compare it with
// the hardware path.
uint32_t Crc32cExtendPortable(uint32_t crc, std::span<const std::byte> data);

}  // namespace glvq
