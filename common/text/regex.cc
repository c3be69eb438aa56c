#include "common/text/regex.h"

#include <oniguruma.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace glvq::text {
namespace {

// Oniguruma wants its encodings registered once per process.
void InitializeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

std::string OnigMessage(int code, OnigErrorInfo* info) {
  OnigUChar buffer[ONIG_MAX_ERROR_MESSAGE_LEN];
  const int n = info != nullptr ? onig_error_code_to_str(buffer, code, info)
                                : onig_error_code_to_str(buffer, code);
  return std::string(reinterpret_cast<const char*>(buffer), n > 0 ? n : 0);
}

const OnigUChar* U(const char* p) { return reinterpret_cast<const OnigUChar*>(p); }

}  // namespace

struct Regex::Impl {
  regex_t* regex = nullptr;
  ~Impl() {
    if (regex != nullptr) onig_free(regex);
  }
};

Regex::Regex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

absl::StatusOr<Regex> Regex::Compile(std::string_view pattern) {
  if (!IsValidUtf8(pattern)) return absl::InvalidArgumentError("regex pattern is not valid UTF-8");
  InitializeOnce();
  auto impl = std::make_unique<Impl>();
  OnigErrorInfo info;
  const int rc = onig_new(&impl->regex, U(pattern.data()), U(pattern.data() + pattern.size()),
                          ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_RUBY, &info);
  if (rc != ONIG_NORMAL) {
    impl->regex = nullptr;
    return absl::InvalidArgumentError(
        absl::StrCat("regex pattern does not compile: ", OnigMessage(rc, &info)));
  }
  return Regex(std::move(impl));
}

absl::StatusOr<Regex> Regex::Literal(std::string_view literal) {
  std::string escaped;
  for (const char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/ #").find(c) != std::string_view::npos) {
      escaped += '\\';
    }
    escaped += c;
  }
  return Compile(escaped);
}

absl::StatusOr<std::vector<ByteSpan>> Regex::FindAll(std::string_view text) const {
  std::vector<ByteSpan> spans;
  OnigRegion* region = onig_region_new();
  const OnigUChar* begin = U(text.data());
  const OnigUChar* end = begin + text.size();
  size_t from = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (from <= text.size()) {
    const int rc =
        onig_search(impl_->regex, begin, end, begin + from, end, region, ONIG_OPTION_NONE);
    if (rc == ONIG_MISMATCH) break;
    if (rc < 0) {
      onig_region_free(region, 1);
      return absl::InternalError(absl::StrCat("regex search failed: ", OnigMessage(rc, nullptr)));
    }
    const size_t s = static_cast<size_t>(region->beg[0]);
    const size_t e = static_cast<size_t>(region->end[0]);
    if (s == e && have_last && s == last_end) {
      // An empty match right after the previous one: step over one
      // character instead, as tokenizers does (no endless loop).
      from += from < text.size() ? Utf8Length(static_cast<unsigned char>(text[from])) : 1;
      continue;
    }
    spans.emplace_back(s, e);
    from = e;
    have_last = true;
    last_end = e;
  }
  onig_region_free(region, 1);
  return spans;
}

absl::StatusOr<std::string> Regex::ReplaceAll(std::string_view text,
                                              std::string_view content) const {
  ASSIGN_OR_RETURN(const std::vector<ByteSpan> matches, FindAll(text));
  std::string out;
  size_t at = 0;
  for (const auto& [begin, end] : matches) {
    out.append(text.substr(at, begin - at)).append(content);
    at = end;
  }
  return out.append(text.substr(at));
}

size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

bool IsValidUtf8(std::string_view text, size_t* bad_offset) {
  size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (b0 < 0x80) {
      ++i;
      continue;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      n = 2, cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      n = 3, cp = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      n = 4, cp = b0 & 0x07;
    }
    bool ok = n != 0 && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    // Overlong 3/4-byte forms, UTF-16 surrogates, beyond U+10FFFF.
    if (ok)
      ok = !(n == 3 && cp < 0x800) && !(n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) &&
           !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok) {
      if (bad_offset != nullptr) *bad_offset = i;
      return false;
    }
    i += n;
  }
  return true;
}

}  // namespace glvq::text
