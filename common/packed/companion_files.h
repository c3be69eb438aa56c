// The files beside a checkpoint's weights that using the model needs,
// besides config.json: the tokenizer, the generation defaults and the chat
// template. A packed or dequantized model carries them over from its
// source, so that `from_pretrained` and a tokenizer work on the output
// directory exactly as on the source (docs/format.md §1).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "absl/status/status.h"

namespace glvq {

// The names copied when the source has them (Hugging Face conventions:
// fast and slow tokenizers, SentencePiece, BPE vocabularies, templates).
inline constexpr std::array<std::string_view, 10> kCompanionFiles = {
    "tokenizer.json",    "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "generation_config.json", "chat_template.jinja",
    "chat_template.json", "tokenizer.model",       "vocab.json",
    "merges.txt"};

// Largest companion file copied (a 256k-vocabulary tokenizer.json is ~35 MB).
inline constexpr uint64_t kMaxCompanionBytes = 256u << 20;

// Copies every file of kCompanionFiles that exists in `source_dir` into
// `dest_dir`, each written atomically. A symlink is followed (Hugging Face
// caches link to blobs). INVALID_ARGUMENT, naming the file, if one exists
// but is not a regular file (a directory or FIFO, say) or is larger than
// kMaxCompanionBytes; nothing is read from such a file.
absl::Status CopyCompanionFiles(const std::filesystem::path& source_dir,
                                const std::filesystem::path& dest_dir);

}  // namespace glvq
