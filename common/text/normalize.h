// Unicode normalization forms for tokenizer.json normalizers (NFC, NFD,
// NFKC, NFKD), backed by ICU (Debian's libicu): the Unicode Consortium's
// reference library, rather than hand-kept composition tables.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace glvq::text {

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };

// `text` (valid UTF-8) in normal form `form`. INTERNAL if ICU fails.
absl::StatusOr<std::string> Normalize(std::string_view text, NormalForm form);

}  // namespace glvq::text
