// Unicode regular expressions for tokenizers' pre-tokenization patterns
// (`\p{L}`, `\p{N}`, `(?!\S)`, `(?i:'s|'t)`, ...), on UTF-8 text.
//
// Backed by Oniguruma (Debian's libonig) with Ruby syntax: the engine and
// syntax that Hugging Face `tokenizers` compiles these patterns with, so a
// tokenizer.json pattern means here exactly what it means there.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace glvq::text {

// [start, end) byte offsets into the searched text.
using ByteSpan = std::pair<size_t, size_t>;

class Regex {
 public:
  // Compiles `pattern` (UTF-8). INVALID_ARGUMENT with Oniguruma's message
  // when it does not compile.
  static absl::StatusOr<Regex> Compile(std::string_view pattern);
  // A pattern that matches `literal` exactly (every metacharacter escaped).
  static absl::StatusOr<Regex> Literal(std::string_view literal);

  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Every non-overlapping match in `text` (valid UTF-8), left to right, as
  // tokenizers' find_iter yields them: after an empty match that directly
  // follows the previous match, the search moves on by one character.
  // INTERNAL only when the engine itself fails (e.g. out of memory).
  absl::StatusOr<std::vector<ByteSpan>> FindAll(std::string_view text) const;

  // `text` with every match of FindAll replaced by `content` (tokenizers'
  // Replace normalizer and decoder). INTERNAL as FindAll.
  absl::StatusOr<std::string> ReplaceAll(std::string_view text, std::string_view content) const;

 private:
  struct Impl;
  explicit Regex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether `text` is well-formed UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF). On failure `*bad_offset` (if given) is the byte
// offset of the first bad sequence.
bool IsValidUtf8(std::string_view text, size_t* bad_offset = nullptr);

// The byte length of the UTF-8 character that starts with `lead` (1 for
// a byte that cannot start one, so that callers always advance).
size_t Utf8Length(unsigned char lead);

}  // namespace glvq::text
