#include "common/text/decoder.h"

#include <array>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/text/pre_tokenizer.h"
#include "common/text/regex.h"

namespace glvq::text {
namespace {

using Json = nlohmann::json;
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// The length of the valid UTF-8 sequence at s[i], or 0 with `*bad` the
// length of the maximal invalid prefix to replace (at least 1).
size_t ValidAt(std::string_view s, size_t i, size_t* bad) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF)
    n = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF)
    n = 3, lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
  else if (b0 >= 0xF0 && b0 <= 0xF4)
    n = 4, lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
  if (n == 0) return *bad = 1, 0;
  for (size_t k = 1; k < n; ++k) {
    const bool in_range = i + k < s.size() &&
                          static_cast<unsigned char>(s[i + k]) >= (k == 1 ? lo : 0x80) &&
                          static_cast<unsigned char>(s[i + k]) <= (k == 1 ? hi : 0xBF);
    if (!in_range) return *bad = k, 0;
  }
  return n;
}

class ByteLevelDecoder : public TextDecoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    static const std::unordered_map<std::string, char> bytes = [] {
      std::unordered_map<std::string, char> m;
      for (int b = 0; b < 256; ++b)
        m[ByteLevelChar(static_cast<unsigned char>(b))] = static_cast<char>(b);
      return m;
    }();
    std::string raw;
    for (const std::string& t : tokens) {
      for (size_t i = 0; i < t.size();) {
        const size_t n = std::min(Utf8Length(static_cast<unsigned char>(t[i])), t.size() - i);
        const std::string ch = t.substr(i, n);
        const auto it = bytes.find(ch);
        raw += it != bytes.end() ? std::string(1, it->second) : ch;
        i += n;
      }
    }
    return {Utf8Lossy(raw)};
  }
};

class MetaspaceDecoder : public TextDecoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t at = 0; at < t.size();) {
        if (t.compare(at, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && strip_first_)) out += ' ';  // the first token loses them all
          at += replacement_.size();
        } else {
          out += t[at++];
        }
      }
      tokens[i] = std::move(out);
    }
    return tokens;
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

// <0xXX> tokens: runs of them become bytes, decoded as UTF-8 (each byte of
// an invalid run becomes U+FFFD, as tokenizers does).
class ByteFallbackDecoder : public TextDecoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string run;
    size_t run_tokens = 0;
    auto flush = [&] {
      if (run_tokens == 0) return;
      if (IsValidUtf8(run)) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run_tokens; ++i) out.emplace_back(kReplacementChar);
      }
      run.clear(), run_tokens = 0;
    };
    for (std::string& t : tokens) {
      if (const auto b = ByteOf(t)) {
        run += *b, ++run_tokens;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    return out;
  }

 private:
  static std::optional<char> ByteOf(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
    unsigned value = 0;
    for (size_t i = 3; i < 5; ++i) {
      const char c = t[i];
      const int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                               : -1;
      if (digit < 0) return std::nullopt;
      value = value * 16 + static_cast<unsigned>(digit);
    }
    return static_cast<char>(value);
  }
};

class FuseDecoder : public TextDecoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    return {all};
  }
};

class StripDecoder : public TextDecoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (std::string& t : tokens) {
      for (size_t k = 0; k < start_ && t.starts_with(content_); ++k) t.erase(0, content_.size());
      for (size_t k = 0; k < stop_ && t.ends_with(content_); ++k)
        t.resize(t.size() - content_.size());
    }
    return tokens;
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder : public TextDecoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (std::string& t : tokens) {
      // The engine failing (out of memory) leaves the token as it was.
      if (auto replaced = pattern_.ReplaceAll(t, content_); replaced.ok()) t = *std::move(replaced);
    }
    return tokens;
  }

 private:
  Regex pattern_;
  std::string content_;
};

class SequenceDecoder : public TextDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<TextDecoder>> steps)
      : steps_(std::move(steps)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (const auto& step : steps_) tokens = step->DecodeChain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<TextDecoder>> steps_;
};

}  // namespace

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    size_t bad = 0;
    const size_t n = ValidAt(bytes, i, &bad);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out += kReplacementChar;
      i += bad;
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<TextDecoder>> ParseDecoder(const Json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.is_object() ? j.value("type", std::string()) : std::string();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Metaspace") {
    const std::string scheme = j.contains("prepend_scheme")
                                   ? j.at("prepend_scheme").get<std::string>()
                                   : (j.value("add_prefix_space", true) ? "always" : "never");
    return std::make_unique<MetaspaceDecoder>(j.value("replacement", std::string("\xE2\x96\x81")),
                                              scheme != "never");
  }
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(j.at("content").get<std::string>(),
                                          j.value("start", size_t{0}), j.value("stop", size_t{0}));
  }
  if (type == "Replace") {
    ASSIGN_OR_RETURN(Regex pattern, PatternFromJson(j.at("pattern")));
    return std::make_unique<ReplaceDecoder>(std::move(pattern), j.at("content").get<std::string>());
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<TextDecoder>> steps;
    for (const Json& d : j.at("decoders")) {
      ASSIGN_OR_RETURN(std::unique_ptr<TextDecoder> step, ParseDecoder(d));
      if (step != nullptr) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  return absl::UnimplementedError(
      absl::StrCat("decoder '", type, "' is not supported by glvq: ", j.dump().substr(0, 120)));
}

}  // namespace glvq::text
