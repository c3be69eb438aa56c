#include "model/tokens.h"

#include <charconv>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"

namespace glvq::model {
namespace {

constexpr uint64_t kMaxTokenFileBytes = uint64_t{1} << 30;
// Longer offending text is cut in messages so an error stays one short line.
constexpr size_t kMaxQuotedChars = 32;

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// `word` quoted for a message: cut short, control and non-ASCII bytes as '?'
// (a binary file must not garble the terminal).
std::string Quoted(std::string_view word) {
  std::string text(word.substr(0, kMaxQuotedChars));
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
  }
  return absl::StrCat("\"", text, word.size() > kMaxQuotedChars ? "...\"" : "\"");
}

// The ids of one line (empty for blank and comment lines).
absl::StatusOr<TokenSequence> ParseLine(std::string_view line, const std::string& where,
                                        int64_t line_number, int64_t vocab_size) {
  TokenSequence ids;
  size_t pos = 0;
  while (pos < line.size() && IsBlank(line[pos])) ++pos;
  if (pos < line.size() && line[pos] == '#') return ids;
  while (pos < line.size()) {
    size_t end = pos;
    while (end < line.size() && !IsBlank(line[end])) ++end;
    const std::string_view word = line.substr(pos, end - pos);
    int64_t id = -1;
    const auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (ec == std::errc::result_out_of_range ||
        (ec == std::errc() && ptr == word.data() + word.size() && (id < 0 || id >= vocab_size))) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ":", line_number, ": token id ", Quoted(word),
                       " is outside the vocabulary [0, ", vocab_size, ")"));
    }
    if (ec != std::errc() || ptr != word.data() + word.size()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ":", line_number, ": ", Quoted(word),
                                                     " is not a token id (a decimal integer)"));
    }
    ids.push_back(static_cast<int32_t>(id));
    pos = end;
    while (pos < line.size() && IsBlank(line[pos])) ++pos;
  }
  return ids;
}

}  // namespace

absl::StatusOr<std::vector<TokenSequence>> ParseTokens(std::string_view text,
                                                       const std::string& where,
                                                       int64_t vocab_size) {
  if (vocab_size <= 0 || vocab_size > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("vocab_size ", vocab_size, " is out of range"));
  }
  std::vector<TokenSequence> sequences;
  int64_t line_number = 0;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    ++line_number;
    ASSIGN_OR_RETURN(TokenSequence ids, ParseLine(line, where, line_number, vocab_size));
    if (!ids.empty()) sequences.push_back(std::move(ids));
  }
  if (sequences.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no token sequences in its ",
                                                   line_number,
                                                   " lines (only blank lines and # comments)"));
  }
  return sequences;
}

absl::StatusOr<std::vector<TokenSequence>> ReadTokenFile(const std::filesystem::path& path,
                                                         int64_t vocab_size) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxTokenFileBytes));
  return ParseTokens(text, path.string(), vocab_size);
}

std::string FormatTokens(const std::vector<TokenSequence>& sequences,
                         const std::vector<std::string>& comments) {
  std::string text;
  for (const std::string& c : comments) absl::StrAppend(&text, "# ", c, "\n");
  for (const TokenSequence& seq : sequences) {
    absl::StrAppend(&text, absl::StrJoin(seq, " "), "\n");
  }
  return text;
}

int64_t CountTokens(const std::vector<TokenSequence>& sequences) {
  int64_t n = 0;
  for (const TokenSequence& s : sequences) n += static_cast<int64_t>(s.size());
  return n;
}

}  // namespace glvq::model
