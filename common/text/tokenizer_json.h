// Tokenizers described by a Hugging Face tokenizer.json. What is
// implemented (anything else is refused with UNIMPLEMENTED, naming it):
//   model           BPE (merges as "a b" strings or [a, b] pairs; unk_token,
//                   fuse_unk, byte_fallback, ignore_merges; no dropout, no
//                   continuing_subword_prefix / end_of_word_suffix)
//   added_tokens    split out first, leftmost-longest; lstrip, rstrip,
//                   single_word, normalized
//   normalizer      null, NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence
//   pre_tokenizer   null, Split, Digits, ByteLevel, Metaspace, Sequence
//   post_processor  null, ByteLevel (adds nothing), TemplateProcessing
//                   (its `single` template), Sequence of these
// `truncation` and `padding` are ignored: glvq tokenizes whole documents
// and cuts its own windows. The decoder is not needed for encoding.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/text/tokenizer.h"

namespace glvq::text {

// Builds the tokenizer that `json` (a tokenizer.json's text) describes.
// Errors start with `where` (the file's path).
absl::StatusOr<std::unique_ptr<Tokenizer>> ParseTokenizerJson(std::string_view json,
                                                              const std::string& where);

}  // namespace glvq::text
