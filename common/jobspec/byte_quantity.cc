#include "common/jobspec/byte_quantity.h"

#include <array>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/string_view.h"

namespace glvq::jobspec {
namespace {

struct Suffix {
  const char* text;
  uint64_t factor;
};
// Two-letter suffixes first so that "Gi" is not read as "G" + junk.
constexpr std::array<Suffix, 11> kSuffixes = {{{"Ki", 1ull << 10},
                                               {"Mi", 1ull << 20},
                                               {"Gi", 1ull << 30},
                                               {"Ti", 1ull << 40},
                                               {"Pi", 1ull << 50},
                                               {"k", 1000ull},
                                               {"K", 1000ull},
                                               {"M", 1000'000ull},
                                               {"G", 1000'000'000ull},
                                               {"T", 1000'000'000'000ull},
                                               {"P", 1000'000'000'000'000ull}}};

}  // namespace

absl::StatusOr<uint64_t> ParseByteQuantity(std::string_view text) {
  std::string_view digits = text;
  uint64_t factor = 1;
  for (const Suffix& s : kSuffixes) {
    const std::string_view suffix(s.text);
    if (digits.size() > suffix.size() && digits.ends_with(suffix)) {
      digits.remove_suffix(suffix.size());
      factor = s.factor;
      break;
    }
  }
  uint64_t value = 0;
  const bool all_digits =
      !digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos;
  if (!all_digits || !absl::SimpleAtoi(Sv(digits), &value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected a byte count such as 4294967296, 8Gi or 512Mi, got '", Sv(text), "'"));
  }
  if (value > UINT64_MAX / factor) {
    return absl::InvalidArgumentError(absl::StrCat("byte count '", Sv(text), "' is too large"));
  }
  return value * factor;
}

std::string FormatBytes(uint64_t bytes) {
  constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double v = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < kUnits.size()) {
    v /= 1024.0;
    ++unit;
  }
  return absl::StrFormat("%.2f %s", v, kUnits[unit]);
}

}  // namespace glvq::jobspec
