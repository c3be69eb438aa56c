#include "common/packed/bitpack.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/packed/layout.h"

namespace glvq {
namespace {

// The block paths move 8 codes through the low b bytes of a 64-bit word,
// which is the stream's byte order only on a little-endian host.
static_assert(std::endian::native == std::endian::little,
              "bitpack assumes a little-endian host");

absl::Status CheckBits(int bits) {
  if (bits < static_cast<int>(packed::kMinCodeBits) ||
      bits > static_cast<int>(packed::kMaxCodeBits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bits per code must be in 1..8, got ", bits));
  }
  return absl::OkStatus();
}

absl::Status CheckPackedSize(size_t packed_bytes, size_t num_codes, int bits) {
  const uint64_t expected = PackedBytes(num_codes, bits);
  if (packed_bytes != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        num_codes, " codes of ", bits, " bits take ", expected,
        " packed bytes, but the buffer has ", packed_bytes));
  }
  return absl::OkStatus();
}

// Only called once a violation is known to exist, to name it precisely.
absl::Status CodeRangeError(std::span<const uint8_t> codes, int bits) {
  for (size_t k = 0; k < codes.size(); ++k) {
    if ((codes[k] >> bits) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "code ", static_cast<int>(codes[k]), " at index ", k,
          " does not fit in ", bits, " bits"));
    }
  }
  return absl::InternalError("code range violation vanished");
}

absl::Status CheckPackArgs(std::span<const uint8_t> codes, int bits,
                           std::span<std::byte> out) {
  RETURN_IF_ERROR(CheckBits(bits));
  return CheckPackedSize(out.size(), codes.size(), bits);
}

absl::Status CheckUnpackArgs(std::span<const std::byte> packed, int bits,
                             std::span<uint8_t> codes) {
  RETURN_IF_ERROR(CheckBits(bits));
  return CheckPackedSize(packed.size(), codes.size(), bits);
}

// `out` must be zeroed. Returns the OR of all codes (for the range check).
uint8_t PackBitByBit(std::span<const uint8_t> codes, int bits, std::byte* out) {
  uint8_t seen = 0;
  for (uint64_t k = 0; k < codes.size(); ++k) {
    seen |= codes[k];
    for (int j = 0; j < bits; ++j) {
      if (((codes[k] >> j) & 1u) == 0) continue;
      const uint64_t bit = k * static_cast<uint64_t>(bits) + static_cast<uint64_t>(j);
      out[bit >> 3] |= static_cast<std::byte>(1u << (bit & 7u));
    }
  }
  return seen;
}

void UnpackBitByBit(const std::byte* in, int bits, std::span<uint8_t> codes) {
  for (uint64_t k = 0; k < codes.size(); ++k) {
    unsigned value = 0;
    for (int j = 0; j < bits; ++j) {
      const uint64_t bit = k * static_cast<uint64_t>(bits) + static_cast<uint64_t>(j);
      const unsigned b = (std::to_integer<unsigned>(in[bit >> 3]) >> (bit & 7u)) & 1u;
      value |= b << j;
    }
    codes[k] = static_cast<uint8_t>(value);
  }
}

// 8 codes of B bits are exactly B bytes, so whole blocks need no shifting
// across block boundaries.
template <int B>
void PackBlocks(const uint8_t* codes, uint64_t blocks, std::byte* out) {
  for (uint64_t i = 0; i < blocks; ++i, codes += 8, out += B) {
    uint64_t word = 0;
    for (int j = 0; j < 8; ++j) word |= uint64_t{codes[j]} << (j * B);
    std::memcpy(out, &word, B);
  }
}

// The OR of all codes, which fits in `bits` bits exactly when every code
// does; a separate pass because it vectorizes and the packing loop does not.
uint8_t OrOfAll(std::span<const uint8_t> codes) {
  uint8_t seen = 0;
  for (uint8_t c : codes) seen |= c;
  return seen;
}

template <int B>
void UnpackBlock(uint64_t word, uint8_t* codes) {
  constexpr uint64_t kMask = (uint64_t{1} << B) - 1;
  for (int j = 0; j < 8; ++j) {
    codes[j] = static_cast<uint8_t>((word >> (j * B)) & kMask);
  }
}

// Loads a whole 64-bit word per block while 8 bytes are in bounds (an
// odd-sized memcpy of B bytes compiles to several narrow loads, measured ~4x
// slower) and exactly B bytes for the last blocks.
template <int B>
void UnpackBlocks(const std::byte* in, uint64_t in_bytes, uint64_t blocks, uint8_t* codes) {
  const uint64_t wide_blocks = in_bytes < 8 ? 0 : std::min(blocks, (in_bytes - 8) / B + 1);
  uint64_t i = 0;
  for (; i < wide_blocks; ++i, in += B, codes += 8) {
    uint64_t word;
    std::memcpy(&word, in, 8);
    UnpackBlock<B>(word, codes);
  }
  for (; i < blocks; ++i, in += B, codes += 8) {
    uint64_t word = 0;
    std::memcpy(&word, in, B);
    UnpackBlock<B>(word, codes);
  }
}

template <int B>
void PackFast(std::span<const uint8_t> codes, std::span<std::byte> out) {
  const uint64_t blocks = codes.size() / 8;
  PackBlocks<B>(codes.data(), blocks, out.data());
  std::byte* tail = out.data() + blocks * B;
  const size_t tail_bytes = out.size() - blocks * B;
  if (tail_bytes > 0) std::memset(tail, 0, tail_bytes);
  PackBitByBit(codes.subspan(blocks * 8), B, tail);
}

template <int B>
void UnpackFast(std::span<const std::byte> packed, std::span<uint8_t> codes) {
  const uint64_t blocks = codes.size() / 8;
  UnpackBlocks<B>(packed.data(), packed.size(), blocks, codes.data());
  UnpackBitByBit(packed.data() + blocks * B, B, codes.subspan(blocks * 8));
}

}  // namespace

uint64_t PackedBytes(uint64_t num_codes, int bits) {
  return (num_codes * static_cast<uint64_t>(bits) + 7) / 8;
}

absl::Status PackCodes(std::span<const uint8_t> codes, int bits,
                       std::span<std::byte> out) {
  RETURN_IF_ERROR(CheckPackArgs(codes, bits, out));
  if ((OrOfAll(codes) >> bits) != 0) return CodeRangeError(codes, bits);
  switch (bits) {
    case 1: PackFast<1>(codes, out); break;
    case 2: PackFast<2>(codes, out); break;
    case 3: PackFast<3>(codes, out); break;
    case 4: PackFast<4>(codes, out); break;
    case 5: PackFast<5>(codes, out); break;
    case 6: PackFast<6>(codes, out); break;
    case 7: PackFast<7>(codes, out); break;
    default: PackFast<8>(codes, out); break;
  }
  return absl::OkStatus();
}

absl::Status UnpackCodes(std::span<const std::byte> packed, int bits,
                         std::span<uint8_t> codes) {
  RETURN_IF_ERROR(CheckUnpackArgs(packed, bits, codes));
  switch (bits) {
    case 1: UnpackFast<1>(packed, codes); break;
    case 2: UnpackFast<2>(packed, codes); break;
    case 3: UnpackFast<3>(packed, codes); break;
    case 4: UnpackFast<4>(packed, codes); break;
    case 5: UnpackFast<5>(packed, codes); break;
    case 6: UnpackFast<6>(packed, codes); break;
    case 7: UnpackFast<7>(packed, codes); break;
    default: UnpackFast<8>(packed, codes); break;
  }
  return absl::OkStatus();
}

absl::Status PackCodesRef(std::span<const uint8_t> codes, int bits,
                          std::span<std::byte> out) {
  RETURN_IF_ERROR(CheckPackArgs(codes, bits, out));
  if (!out.empty()) std::memset(out.data(), 0, out.size());
  const uint8_t seen = PackBitByBit(codes, bits, out.data());
  if ((seen >> bits) != 0) return CodeRangeError(codes, bits);
  return absl::OkStatus();
}

absl::Status UnpackCodesRef(std::span<const std::byte> packed, int bits,
                            std::span<uint8_t> codes) {
  RETURN_IF_ERROR(CheckUnpackArgs(packed, bits, codes));
  UnpackBitByBit(packed.data(), bits, codes);
  return absl::OkStatus();
}

}  // namespace glvq
