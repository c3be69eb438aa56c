// Byte counts as people write them: "4294967296", "8Gi", "512Mi", "4G".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace glvq::jobspec {

// A non-negative integer, optionally followed by a Kubernetes-style suffix:
// Ki Mi Gi Ti Pi (powers of 1024) or k/K M G T P (powers of 1000). No
// fractions, no spaces. INVALID_ARGUMENT on anything else or on overflow.
absl::StatusOr<uint64_t> ParseByteQuantity(std::string_view text);

// "1.50 GiB", "512 B": for tables, not for parsing back.
std::string FormatBytes(uint64_t bytes);

}  // namespace glvq::jobspec
