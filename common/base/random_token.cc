#include "common/base/random_token.h"

#include <cstdint>
#include <random>

#include "absl/strings/str_format.h"

namespace glvq {

std::string RandomToken() {
  std::random_device rd;
  const uint64_t value = (uint64_t{rd()} << 32) ^ uint64_t{rd()};
  return absl::StrFormat("%016x", value);
}

}  // namespace glvq
