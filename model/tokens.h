// Token files: the evaluation and calibration input. One sequence of token
// ids per line, separated by spaces or tabs; blank lines and lines whose
// first non-blank character is '#' are ignored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace glvq::model {

using TokenSequence = std::vector<int32_t>;

// Parses token-file text. `where` (the file's path) prefixes every error as
// "WHERE:LINE: problem", so one line tells the user what to fix.
// INVALID_ARGUMENT for anything that is not a decimal id, an id outside
// [0, vocab_size), or a file without any sequence.
absl::StatusOr<std::vector<TokenSequence>> ParseTokens(std::string_view text,
                                                       const std::string& where,
                                                       int64_t vocab_size);

// Reads and parses `path` (errors as for ParseTokens; NOT_FOUND if missing).
absl::StatusOr<std::vector<TokenSequence>> ReadTokenFile(const std::filesystem::path& path,
                                                         int64_t vocab_size);

// Token-file text that ParseTokens reads back as `sequences`: each of
// `comments` on a line of its own after "# " (they must not contain a
// newline), then one sequence per line, ids separated by single spaces.
std::string FormatTokens(const std::vector<TokenSequence>& sequences,
                         const std::vector<std::string>& comments);

// Total number of tokens over all sequences.
int64_t CountTokens(const std::vector<TokenSequence>& sequences);

}  // namespace glvq::model
