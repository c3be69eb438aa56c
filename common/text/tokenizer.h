// Tokenizers: text to the token ids a model was trained on, so that glvq
// can calibrate on text (glvq tokenize) with the model's own tokenizer.
//
// Hugging Face tokenizer.json files with a BPE model: byte-level (GPT-2,
// Llama 3, Qwen2, SmolLM) or SentencePiece-style with byte fallback (the
// tokenizer.json of Llama 2 and Mistral), with the normalizers,
// pre-tokenizers and post-processors such models use
// (common/text/tokenizer_json.h lists them; anything else is refused with
// its name, never approximated). Agreement token for token with
// `tokenizers` is tests/interop/tokenizer_interop.py.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace glvq::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The ids of `text` as the reference library encodes it by default
  // (`Tokenizer.encode(text)` in `tokenizers`, with the post-processor's
  // special tokens such as Llama 3's <|begin_of_text|>).
  // INVALID_ARGUMENT if `text` is not valid UTF-8 (naming the byte offset)
  // or longer than 1 GiB. Thread-safe.
  virtual absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const = 0;

  // The text of `ids` as the reference library decodes it by default
  // (`Tokenizer.decode(ids)`: special tokens skipped, ids no token has
  // dropped, bytes that are not UTF-8 shown as U+FFFD). Thread-safe.
  virtual std::string Decode(std::span<const int32_t> ids) const = 0;

  // Every id Encode returns is in [0, vocab_size()).
  virtual int64_t vocab_size() const = 0;

  // One line for reports, e.g. "tokenizer.json: BPE, byte-level, 49152 ids".
  virtual std::string Describe() const = 0;
};

// Loads the tokenizer in `path`: a tokenizer.json file or a model
// directory holding one. NOT_FOUND when there is none; INVALID_ARGUMENT for
// a malformed file; UNIMPLEMENTED, naming the component, for a part glvq
// does not implement, and for a SentencePiece tokenizer.model (see
// tokenizer.cc for why).
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::filesystem::path& path);

// Largest text Encode accepts, in bytes.
inline constexpr size_t kMaxEncodeBytes = size_t{1} << 30;

}  // namespace glvq::text
