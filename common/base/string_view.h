// Debian's absl is built with its own absl::string_view, distinct from
// std::string_view, so absl::StrCat/StrJoin reject std::string_view
// arguments. Sv() bridges the two without copying.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace glvq {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace glvq
