// The pre-tokenizers of a tokenizer.json, as Hugging Face `tokenizers`
// applies them: each step splits every current piece of text further.
//   Split      a regex or literal, with one of the five split behaviours and `invert`
//   Digits     every Unicode digit its own piece, or runs of digits
//   ByteLevel  optional prefix space, GPT-2's regex split, then every byte
//              mapped to its printable stand-in character (GPT-2's table)
//   Metaspace  spaces replaced by a marker (SentencePiece's "▁"), the marker
//              prepended (always, never, or to the text's first piece), and
//              a split before each marker
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/text/regex.h"
#include "nlohmann/json.hpp"

namespace glvq::text {

// How the matches of a Split pattern become pieces (tokenizers'
// SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A piece of text on its way to the model. `at_start`: it begins at offset
// 0 of the original text (Metaspace's prepend_scheme "first" needs it).
struct Piece {
  std::string text;
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits each of `pieces` (UTF-8) in place; empty pieces are dropped.
  virtual absl::Status Apply(std::vector<Piece>* pieces) const = 0;
};

enum class PrependScheme { kAlways, kNever, kFirst };

// Split{pattern, behavior, invert}.
absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeSplit(Regex pattern, SplitBehavior behavior,
                                                        bool invert);
// Digits{individual_digits}.
absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeDigits(bool individual_digits);
// ByteLevel{add_prefix_space, use_regex}.
absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeByteLevel(bool add_prefix_space, bool use_regex);

// Metaspace{replacement, prepend_scheme, split}.
absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeMetaspace(std::string replacement,
                                                            PrependScheme prepend, bool split);

// The pieces of `text` for `matches` (in order, non-overlapping) under
// `behavior` (exposed for tests).
std::vector<ByteSpan> SplitSpans(std::string_view text, const std::vector<ByteSpan>& matches,
                                 SplitBehavior behavior, bool invert);

// The regex of a tokenizer.json pattern ({"Regex": "..."} or {"String":
// "..."}, a literal), for Split, Replace and the Replace decoder.
// UNIMPLEMENTED for another kind.
absl::StatusOr<Regex> PatternFromJson(const nlohmann::json& pattern);

// GPT-2's byte → character table: byte b as the UTF-8 of its stand-in.
const std::string& ByteLevelChar(unsigned char b);

}  // namespace glvq::text
