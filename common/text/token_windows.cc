#include "common/text/token_windows.h"

#include <algorithm>
#include <numeric>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/file_util.h"
#include "common/base/parallel.h"
#include "common/base/status_macros.h"
#include "common/text/regex.h"
#include "nlohmann/json.hpp"

namespace glvq::text {
namespace {

constexpr uint64_t kMaxTextFileBytes = uint64_t{4} << 30;

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// `k` distinct indices of [0, n), uniformly, sorted: a partial
// Fisher–Yates shuffle whose draws are rejection-sampled (no modulo bias).
std::vector<int64_t> Choose(int64_t n, int64_t k, uint64_t seed) {
  std::vector<int64_t> index(n);
  std::iota(index.begin(), index.end(), 0);
  uint64_t state = seed;
  for (int64_t i = 0; i < k; ++i) {
    const uint64_t range = static_cast<uint64_t>(n - i);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t draw;
    do draw = SplitMix64(&state);
    while (draw >= limit);
    std::swap(index[i], index[i + static_cast<int64_t>(draw % range)]);
  }
  index.resize(k);
  std::sort(index.begin(), index.end());
  return index;
}

absl::Status CheckUtf8(std::string_view text, const std::string& where) {
  size_t bad = 0;
  if (IsValidUtf8(text, &bad)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(where, ": not valid UTF-8 at byte ", bad));
}

absl::StatusOr<std::vector<std::string>> ReadJsonLines(const std::string& text,
                                                       const TextSource& source) {
  std::vector<std::string> documents;
  size_t line_start = 0;
  for (int64_t line = 1; line_start < text.size(); ++line) {
    size_t end = text.find('\n', line_start);
    if (end == std::string::npos) end = text.size();
    const std::string_view row(text.data() + line_start, end - line_start);
    line_start = end + 1;
    if (row.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = absl::StrCat(source.path.string(), ":", line);
    const auto j = nlohmann::json::parse(row, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": not a JSON object"));
    }
    const auto field = j.find(source.field);
    if (field == j.end() || !field->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": no string field \"", source.field, "\""));
    }
    documents.push_back(field->get<std::string>());
  }
  return documents;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadDocuments(const TextSource& source) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(source.path, kMaxTextFileBytes));
  RETURN_IF_ERROR(CheckUtf8(text, source.path.string()));
  if (!source.json_lines) return std::vector<std::string>{std::move(text)};
  return ReadJsonLines(text, source);
}

absl::StatusOr<Windows> CutWindows(const std::vector<std::vector<int32_t>>& documents,
                                   const WindowOptions& options) {
  if (options.seq_len < 0 || options.samples < 0) {
    return absl::InvalidArgumentError("seq_len and samples must be >= 0");
  }
  Windows w;
  std::vector<std::vector<int32_t>> all;
  if (options.seq_len == 0) {
    for (const auto& d : documents) {
      w.stream_tokens += static_cast<int64_t>(d.size());
      if (!d.empty()) all.push_back(d);
    }
  } else {
    std::vector<int32_t> stream;
    for (size_t i = 0; i < documents.size(); ++i) {
      if (i > 0 && options.separator) stream.push_back(*options.separator);
      stream.insert(stream.end(), documents[i].begin(), documents[i].end());
    }
    w.stream_tokens = static_cast<int64_t>(stream.size());
    for (int64_t at = 0; at + options.seq_len <= w.stream_tokens; at += options.seq_len) {
      all.emplace_back(stream.begin() + at, stream.begin() + at + options.seq_len);
    }
  }
  w.available = static_cast<int64_t>(all.size());
  if (w.available == 0 || options.samples > w.available) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the text holds %d tokens: %d windows of %d tokens, fewer than the %d asked for",
        w.stream_tokens, w.available, options.seq_len, std::max<int64_t>(options.samples, 1)));
  }
  if (options.samples == 0 || options.samples == w.available) {
    w.sequences = std::move(all);
    return w;
  }
  for (const int64_t i : Choose(w.available, options.samples, options.seed)) {
    w.sequences.push_back(std::move(all[i]));
  }
  return w;
}

absl::StatusOr<TokenizedText> TokenizeSources(const Tokenizer& tokenizer,
                                              const std::vector<TextSource>& sources,
                                              const WindowOptions& options, int threads) {
  std::vector<std::string> documents;
  for (const TextSource& source : sources) {
    ASSIGN_OR_RETURN(std::vector<std::string> d, ReadDocuments(source));
    for (std::string& s : d) documents.push_back(std::move(s));
  }
  TokenizedText out;
  out.documents = static_cast<int64_t>(documents.size());
  std::vector<std::vector<int32_t>> ids(documents.size());
  std::vector<absl::Status> status(documents.size());
  ParallelFor(out.documents, threads, [&](int64_t i) {
    auto r = tokenizer.Encode(documents[i]);
    if (r.ok()) {
      ids[i] = *std::move(r);
    } else {
      status[i] = r.status();
    }
  });
  for (size_t i = 0; i < documents.size(); ++i) {
    out.bytes += static_cast<int64_t>(documents[i].size());
    if (!status[i].ok()) {
      return absl::Status(status[i].code(),
                          absl::StrCat("document ", i + 1, ": ", status[i].message()));
    }
  }
  ASSIGN_OR_RETURN(out.windows, CutWindows(ids, options));
  return out;
}

}  // namespace glvq::text
