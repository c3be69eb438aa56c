#include "common/text/pre_tokenizer.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"

#include "common/base/status_macros.h"

namespace glvq::text {
namespace {

// GPT-2's split pattern, as tokenizers' ByteLevel compiles it.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The text as alternating (span, is_match) parts that cover it, as
// tokenizers' Pattern::find_matches.
std::vector<std::pair<ByteSpan, bool>> Cover(std::string_view text,
                                             const std::vector<ByteSpan>& matches) {
  std::vector<std::pair<ByteSpan, bool>> parts;
  if (text.empty()) return {{{0, 0}, false}};
  size_t prev = 0;
  for (const ByteSpan& m : matches) {
    if (prev != m.first) parts.push_back({{prev, m.first}, false});
    parts.push_back({m, true});
    prev = m.second;
  }
  if (prev != text.size()) parts.push_back({{prev, text.size()}, false});
  return parts;
}

class SplitStep : public PreTokenizer {
 public:
  SplitStep(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  absl::Status Apply(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    for (const Piece& piece : *pieces) {
      ASSIGN_OR_RETURN(const std::vector<ByteSpan> matches, pattern_.FindAll(piece.text));
      for (const ByteSpan& s : SplitSpans(piece.text, matches, behavior_, invert_)) {
        out.push_back(
            {piece.text.substr(s.first, s.second - s.first), piece.at_start && s.first == 0});
      }
    }
    *pieces = std::move(out);
    return absl::OkStatus();
  }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelStep : public PreTokenizer {
 public:
  ByteLevelStep(bool add_prefix_space, std::unique_ptr<SplitStep> split)
      : add_prefix_space_(add_prefix_space), split_(std::move(split)) {}
  absl::Status Apply(std::vector<Piece>* pieces) const override {
    if (add_prefix_space_) {
      for (Piece& p : *pieces) {
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(p.text.begin(), ' ');
      }
    }
    if (split_ != nullptr) RETURN_IF_ERROR(split_->Apply(pieces));
    for (Piece& p : *pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (const char c : p.text) mapped += ByteLevelChar(static_cast<unsigned char>(c));
      p.text = std::move(mapped);
    }
    return absl::OkStatus();
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<SplitStep> split_;
};

class MetaspaceStep : public PreTokenizer {
 public:
  MetaspaceStep(std::string replacement, PrependScheme prepend, std::unique_ptr<SplitStep> split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(std::move(split)) {}
  absl::Status Apply(std::vector<Piece>* pieces) const override {
    for (Piece& p : *pieces) {
      std::string replaced;
      for (const char c : p.text) {
        if (c == ' ')
          replaced += replacement_;
        else
          replaced += c;
      }
      const bool marked = replaced.starts_with(replacement_);
      if (!marked && (prepend_ == PrependScheme::kAlways ||
                      (prepend_ == PrependScheme::kFirst && p.at_start))) {
        replaced.insert(0, replacement_);
      }
      p.text = std::move(replaced);
    }
    if (split_ != nullptr) RETURN_IF_ERROR(split_->Apply(pieces));
    std::erase_if(*pieces, [](const Piece& p) { return p.text.empty(); });
    return absl::OkStatus();
  }

 private:
  std::string replacement_;
  PrependScheme prepend_;
  std::unique_ptr<SplitStep> split_;
};

std::string EncodeUtf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

}  // namespace

std::vector<ByteSpan> SplitSpans(std::string_view text, const std::vector<ByteSpan>& matches,
                                 SplitBehavior behavior, bool invert) {
  std::vector<std::pair<ByteSpan, bool>> parts = Cover(text, matches);
  if (invert) {
    for (auto& p : parts) p.second = !p.second;
  }
  std::vector<ByteSpan> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& [span, is_match] : parts) {
        if (!is_match) out.push_back(span);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const auto& part : parts) out.push_back(part.first);
      break;
    case SplitBehavior::kContiguous:
      for (const auto& [span, is_match] : parts) {
        if (is_match == previous_match && !out.empty()) {
          out.back().second = span.second;
        } else {
          out.push_back(span);
        }
        previous_match = is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const auto& [span, is_match] : parts) {
        if (is_match && !previous_match && !out.empty()) {
          out.back().second = span.second;
        } else {
          out.push_back(span);
        }
        previous_match = is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->second && !previous_match && !out.empty()) {
          out.back().first = it->first.first;
        } else {
          out.push_back(it->first);
        }
        previous_match = it->second;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  std::erase_if(out, [](const ByteSpan& s) { return s.first == s.second; });
  return out;
}

absl::StatusOr<Regex> PatternFromJson(const nlohmann::json& pattern) {
  if (pattern.is_object() && pattern.contains("Regex")) {
    return Regex::Compile(pattern.at("Regex").get<std::string>());
  }
  if (pattern.is_object() && pattern.contains("String")) {
    return Regex::Literal(pattern.at("String").get<std::string>());
  }
  return absl::UnimplementedError(
      absl::StrCat("pattern ", pattern.dump().substr(0, 80), " is not supported by glvq"));
}

const std::string& ByteLevelChar(unsigned char b) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;  // stand-ins for the bytes that are not printable
    for (int i = 0; i < 256; ++i) {
      const bool printable = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE);
      t[i] = EncodeUtf8(printable ? static_cast<uint32_t>(i) : next++);
    }
    return t;
  }();
  return table[b];
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeSplit(Regex pattern, SplitBehavior behavior,
                                                        bool invert) {
  return std::make_unique<SplitStep>(std::move(pattern), behavior, invert);
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeDigits(bool individual_digits) {
  // tokenizers splits on char::is_numeric (categories Nd, Nl, No = \p{N}):
  // each digit isolated, or runs of them (Contiguous on single digits).
  ASSIGN_OR_RETURN(Regex digit, Regex::Compile(individual_digits ? R"(\p{N})" : R"(\p{N}+)"));
  return std::make_unique<SplitStep>(std::move(digit), SplitBehavior::kIsolated, false);
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeMetaspace(std::string replacement,
                                                            PrependScheme prepend, bool split) {
  if (replacement.empty() || !IsValidUtf8(replacement)) {
    return absl::InvalidArgumentError("Metaspace: replacement must be one UTF-8 character");
  }
  std::unique_ptr<SplitStep> splitter;
  if (split) {
    ASSIGN_OR_RETURN(Regex marker, Regex::Literal(replacement));
    splitter =
        std::make_unique<SplitStep>(std::move(marker), SplitBehavior::kMergedWithNext, false);
  }
  return std::make_unique<MetaspaceStep>(std::move(replacement), prepend, std::move(splitter));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeByteLevel(bool add_prefix_space, bool use_regex) {
  std::unique_ptr<SplitStep> split;
  if (use_regex) {
    ASSIGN_OR_RETURN(Regex gpt2, Regex::Compile(kGpt2Pattern));
    split = std::make_unique<SplitStep>(std::move(gpt2), SplitBehavior::kIsolated, false);
  }
  return std::make_unique<ByteLevelStep>(add_prefix_space, std::move(split));
}

}  // namespace glvq::text
