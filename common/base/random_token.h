// Unguessable identifiers (lease and worker ids), unlike common/base/random.h,
// whose seeded generators make results reproducible.
#pragma once

#include <string>

namespace glvq {

// 64 bits from the operating system's random source (std::random_device:
// getrandom or /dev/urandom on Linux), as 16 lowercase hex digits.
std::string RandomToken();

}  // namespace glvq
