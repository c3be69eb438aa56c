// Packing of b-bit codes (1 <= b <= 8, one code per byte when unpacked) into
// the LSB-first bit streams of the packed format (see common/packed/layout.h
// and docs/format.md): code k occupies bits [k*b, k*b + b) of the stream,
// bit 0 being the least significant bit of byte 0.
//
// PackCodes/UnpackCodes are the fast paths (8 codes of b bits are exactly b
// bytes, so they move whole blocks through a 64-bit word); the *Ref variants
// work bit by bit and are the oracles the fast paths are tested against.
// Both give identical bytes for every input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"

namespace glvq {

// Bytes holding `num_codes` codes of `bits` bits: ceil(num_codes * bits / 8).
// `bits` must be in 1..8 (not checked here).
uint64_t PackedBytes(uint64_t num_codes, int bits);

// Packs `codes` (each < 2^bits) into `out`, which must be exactly
// PackedBytes(codes.size(), bits) bytes; the padding bits of the last byte
// are written as zero. INVALID_ARGUMENT if `bits` is outside 1..8, a code
// does not fit in `bits` bits (the message names its index), or `out` has
// the wrong size. `out` is unspecified after an error.
absl::Status PackCodes(std::span<const uint8_t> codes, int bits,
                       std::span<std::byte> out);

// Unpacks codes.size() codes of `bits` bits from `packed`, which must be
// exactly PackedBytes(codes.size(), bits) bytes. Padding bits after the last
// code are ignored. INVALID_ARGUMENT if `bits` is outside 1..8 or `packed`
// has the wrong size.
absl::Status UnpackCodes(std::span<const std::byte> packed, int bits,
                         std::span<uint8_t> codes);

// Bit-by-bit reference implementations with the same contracts.
absl::Status PackCodesRef(std::span<const uint8_t> codes, int bits,
                          std::span<std::byte> out);
absl::Status UnpackCodesRef(std::span<const std::byte> packed, int bits,
                            std::span<uint8_t> codes);

}  // namespace glvq
