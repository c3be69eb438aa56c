// Glob patterns over whole names (tensor selection and overrides in job
// specs).
#pragma once

#include <fnmatch.h>

#include <string>
#include <string_view>

namespace glvq {

// fnmatch(3) without flags over the whole name: `*` matches any run of
// characters (dots included), `?` one character, `[...]` a set.
inline bool GlobMatch(std::string_view pattern, std::string_view name) {
  // fnmatch needs NUL-terminated strings.
  return ::fnmatch(std::string(pattern).c_str(), std::string(name).c_str(), 0) == 0;
}

}  // namespace glvq
