// The decoders of a tokenizer.json: from token strings back to text, as
// Hugging Face `tokenizers` decodes (ByteLevel, Metaspace, ByteFallback,
// Fuse, Strip, Replace, and a Sequence of them).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace glvq::text {

class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  // tokenizers' decode_chain: the tokens' strings after this step (their
  // concatenation is the text once every step has run).
  virtual std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const = 0;
};

// The decoder `j` describes; null for a JSON null (tokens are then joined
// with spaces). UNIMPLEMENTED naming an unknown type; INVALID_ARGUMENT for
// a malformed one (nlohmann exceptions are the caller's to catch).
absl::StatusOr<std::unique_ptr<TextDecoder>> ParseDecoder(const nlohmann::json& j);

// `bytes` as UTF-8, each maximal invalid subsequence replaced by U+FFFD (as
// Rust's String::from_utf8_lossy).
std::string Utf8Lossy(std::string_view bytes);

}  // namespace glvq::text
