// Host entry points for device code unpacking (tests and benchmarks compare
// them with the CPU codec in common/packed/bitpack.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"

namespace glvq::cuda {

// Unpacks codes.size() codes of `bits` bits from `packed` (exactly
// ceil(codes.size()*bits/8) bytes, host memory) on the current device and
// copies them to `codes` (host memory). INVALID_ARGUMENT on size or bit-width
// errors, UNAVAILABLE without a device, RESOURCE_EXHAUSTED when device memory
// runs out.
absl::Status UnpackCodesOnDevice(std::span<const std::byte> packed, int bits,
                                 std::span<uint8_t> codes);

}  // namespace glvq::cuda
