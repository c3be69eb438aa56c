// From text files to calibration sequences: the documents of plain-text and
// JSON-lines files, and fixed-length token windows cut from their token
// ids (what `glvq tokenize` writes as a token file).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/text/tokenizer.h"

namespace glvq::text {

// A text source. A plain file is one document; a JSON-lines file holds one
// document per non-blank line: the string value of `field` in that line's
// object.
struct TextSource {
  std::filesystem::path path;
  bool json_lines = false;
  std::string field = "text";  // JSON lines only
};

// The documents of `source`, in file order. INVALID_ARGUMENT, naming
// "PATH:LINE", for a line that is not a JSON object with a string `field`
// or text that is not UTF-8; NOT_FOUND for a missing file; files over 4 GiB
// are refused (RESOURCE_EXHAUSTED).
absl::StatusOr<std::vector<std::string>> ReadDocuments(const TextSource& source);

struct WindowOptions {
  int64_t seq_len = 512;             // tokens per window; 0: every document whole
  int64_t samples = 0;               // windows to keep, chosen at random; 0: all
  uint64_t seed = 0;                 // which windows `samples` keeps
  std::optional<int32_t> separator;  // an id put between documents
};

struct Windows {
  std::vector<std::vector<int32_t>> sequences;  // in text order
  int64_t stream_tokens = 0;                    // tokens of all documents (and separators)
  int64_t available = 0;                        // windows the stream holds
};

// The documents' ids joined into one stream (with `separator` between two
// documents), cut into consecutive windows of seq_len tokens (a last,
// shorter remainder is dropped); with `samples`, that many of them chosen
// uniformly without replacement by a seeded generator (SplitMix64, so the
// choice is the same on every platform), kept in text order. With seq_len
// 0 every non-empty document is one sequence (and `samples` picks among
// them). INVALID_ARGUMENT when fewer windows exist than `samples` asks
// for, or none at all.
absl::StatusOr<Windows> CutWindows(const std::vector<std::vector<int32_t>>& documents,
                                   const WindowOptions& options);

// What TokenizeSources did.
struct TokenizedText {
  int64_t documents = 0;
  int64_t bytes = 0;  // of all documents' text
  Windows windows;
};

// Reads every document of `sources` (in order), encodes them with
// `tokenizer` on up to `threads` threads (0: all cores; the result does not
// depend on it) and cuts the windows. Errors name the source or the
// document ("document 3: text is not valid UTF-8 at byte 17").
absl::StatusOr<TokenizedText> TokenizeSources(const Tokenizer& tokenizer,
                                              const std::vector<TextSource>& sources,
                                              const WindowOptions& options, int threads);

}  // namespace glvq::text
