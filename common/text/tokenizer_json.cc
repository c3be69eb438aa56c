#include "common/text/tokenizer_json.h"

#include <algorithm>
#include <climits>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/text/bpe_model.h"
#include "common/text/decoder.h"
#include "common/text/normalize.h"
#include "common/text/pre_tokenizer.h"
#include "common/text/regex.h"
#include "nlohmann/json.hpp"

namespace glvq::text {
namespace {

using Json = nlohmann::json;

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool lstrip = false, rstrip = false, single_word = false, normalized = false, special = false;
};

// A part of the input: an added token's id, or text still to tokenize.
struct Part {
  std::optional<int32_t> id;
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original text
};

// One normalizer: a Unicode normal form, Prepend (a prefix on non-empty
// text) or Replace (every match of `pattern` by `text`).
struct NormalizerStep {
  enum Kind { kForm, kPrepend, kReplace } kind = kForm;
  NormalForm form = NormalForm::kNfc;
  std::string text;
  std::optional<Regex> pattern;
};

absl::Status Unsupported(std::string_view what, const Json& j) {
  return absl::UnimplementedError(
      absl::StrCat(std::string(what), " is not supported by glvq: ", j.dump().substr(0, 120)));
}

// A token id: an integer in [0, 2^31 − 1) (nlohmann would silently
// truncate a larger one).
absl::StatusOr<int32_t> IdOf(const Json& j, std::string_view what) {
  if (!j.is_number_integer() || j.get<int64_t>() < 0 || j.get<int64_t>() >= INT32_MAX ||
      (j.is_number_unsigned() && j.get<uint64_t>() >= INT32_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), ": id ", j.dump(), " is not in [0, 2^31 - 1)"));
  }
  return static_cast<int32_t>(j.get<int64_t>());
}

std::string TypeOf(const Json& j) {
  return j.is_object() ? j.value("type", std::string()) : std::string();
}

// Unicode White_Space, as Rust's char::is_whitespace (lstrip / rstrip).
bool IsWhitespace(uint32_t cp) {
  return (cp >= 0x9 && cp <= 0xD) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

uint32_t DecodeAt(std::string_view s, size_t i, size_t n) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  uint32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

// Start of the whitespace run that ends `s`.
size_t WhitespaceRunStart(std::string_view s) {
  size_t start = s.size();
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8Length(static_cast<unsigned char>(s[i]));
    if (!IsWhitespace(DecodeAt(s, i, n))) start = i + n;
    i += n;
  }
  return start;
}

// Length of the whitespace run that starts `s`.
size_t WhitespaceRunLength(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = Utf8Length(static_cast<unsigned char>(s[i]));
    if (!IsWhitespace(DecodeAt(s, i, n))) break;
    i += n;
  }
  return i;
}

class JsonTokenizer : public Tokenizer {
 public:
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text) const override;
  std::string Decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  std::string Describe() const override { return description_; }

  absl::Status Build(const Json& root);

 private:
  absl::Status ParseAddedTokens(const Json& j);
  absl::Status NormalizeAddedTokens();
  absl::Status ParseNormalizer(const Json& j);
  absl::Status ParsePreTokenizer(const Json& j);
  absl::Status ParsePostProcessor(const Json& j);
  absl::Status ParseModel(const Json& j);
  absl::StatusOr<std::vector<Part>> SplitAdded(std::string_view text, bool normalized) const;
  absl::StatusOr<std::string> NormalizeText(std::string text) const;
  absl::Status EncodeText(Piece piece, std::vector<int32_t>* out) const;

  std::vector<AddedToken> added_;
  std::unordered_map<int32_t, size_t> added_by_id_;  // id → index in added_ (Decode)
  std::vector<NormalizerStep> normalizers_;
  std::vector<std::unique_ptr<PreTokenizer>> pre_tokenizers_;
  std::optional<BpeModel> model_;
  std::unique_ptr<TextDecoder> decoder_;  // null: tokens joined with spaces
  std::vector<int32_t> prefix_, suffix_;        // the post-processor's special tokens
  std::optional<Regex> word_start_, word_end_;  // single_word boundaries
  int64_t vocab_size_ = 0;
  bool byte_level_ = false;
  std::string description_;
};

absl::Status JsonTokenizer::ParseAddedTokens(const Json& j) {
  if (j.is_null()) return absl::OkStatus();
  for (const Json& t : j) {
    AddedToken a;
    a.content = t.at("content").get<std::string>();
    ASSIGN_OR_RETURN(a.id, IdOf(t.at("id"), "added_tokens"));
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.single_word = t.value("single_word", false);
    a.special = t.value("special", false);
    a.normalized = t.value("normalized", !a.special);
    if (a.content.empty() || !IsValidUtf8(a.content)) {
      return absl::InvalidArgumentError(
          absl::StrCat("added_tokens: token ", a.id, " has empty or invalid content"));
    }
    added_by_id_.emplace(a.id, added_.size());  // the first token of an id wins, as before
    added_.push_back(std::move(a));
  }
  ASSIGN_OR_RETURN(word_start_, Regex::Compile(R"(\A\w)"));
  ASSIGN_OR_RETURN(word_end_, Regex::Compile(R"(\w\z)"));
  return absl::OkStatus();
}

// Normalized added tokens are matched in normalized text: normalize them too.
absl::Status JsonTokenizer::NormalizeAddedTokens() {
  for (AddedToken& a : added_) {
    if (a.normalized) {
      ASSIGN_OR_RETURN(a.content, NormalizeText(a.content));
    }
  }
  return absl::OkStatus();
}

absl::Status JsonTokenizer::ParseNormalizer(const Json& j) {
  if (j.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(j);
  if (type == "Sequence") {
    for (const Json& n : j.at("normalizers")) RETURN_IF_ERROR(ParseNormalizer(n));
    return absl::OkStatus();
  }
  NormalizerStep step;
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.form = type == "NFC"    ? NormalForm::kNfc
                : type == "NFD"  ? NormalForm::kNfd
                : type == "NFKC" ? NormalForm::kNfkc
                                 : NormalForm::kNfkd;
  } else if (type == "Prepend") {
    step.kind = NormalizerStep::kPrepend;
    step.text = j.at("prepend").get<std::string>();
  } else if (type == "Replace") {
    step.kind = NormalizerStep::kReplace;
    step.text = j.at("content").get<std::string>();
    ASSIGN_OR_RETURN(step.pattern, PatternFromJson(j.at("pattern")));
  } else {
    return Unsupported(absl::StrCat("normalizer '", type, "'"), j);
  }
  normalizers_.push_back(std::move(step));
  return absl::OkStatus();
}

absl::StatusOr<PrependScheme> ParsePrependScheme(const Json& j) {
  if (!j.contains("prepend_scheme")) {
    return j.value("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  const std::string s = j.at("prepend_scheme").get<std::string>();
  if (s == "always") return PrependScheme::kAlways;
  if (s == "never") return PrependScheme::kNever;
  if (s == "first") return PrependScheme::kFirst;
  return Unsupported(absl::StrCat("Metaspace prepend_scheme '", s, "'"), j);
}

absl::StatusOr<SplitBehavior> ParseBehavior(const Json& j) {
  const std::string b = j.get<std::string>();
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return Unsupported(absl::StrCat("Split behavior '", b, "'"), j);
}

absl::Status JsonTokenizer::ParsePreTokenizer(const Json& j) {
  if (j.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(j);
  std::unique_ptr<PreTokenizer> step;
  if (type == "Sequence") {
    for (const Json& p : j.at("pretokenizers")) RETURN_IF_ERROR(ParsePreTokenizer(p));
    return absl::OkStatus();
  } else if (type == "Split") {
    ASSIGN_OR_RETURN(const SplitBehavior behavior, ParseBehavior(j.at("behavior")));
    ASSIGN_OR_RETURN(Regex regex, PatternFromJson(j.at("pattern")));
    ASSIGN_OR_RETURN(step, MakeSplit(std::move(regex), behavior, j.value("invert", false)));
  } else if (type == "Digits") {
    ASSIGN_OR_RETURN(step, MakeDigits(j.value("individual_digits", false)));
  } else if (type == "ByteLevel") {
    ASSIGN_OR_RETURN(step,
                     MakeByteLevel(j.value("add_prefix_space", true), j.value("use_regex", true)));
    byte_level_ = true;
  } else if (type == "Metaspace") {
    ASSIGN_OR_RETURN(const PrependScheme prepend, ParsePrependScheme(j));
    ASSIGN_OR_RETURN(step, MakeMetaspace(j.value("replacement", std::string("\xE2\x96\x81")),
                                         prepend, j.value("split", true)));
  } else {
    return Unsupported(absl::StrCat("pre_tokenizer '", type, "'"), j);
  }
  pre_tokenizers_.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status JsonTokenizer::ParsePostProcessor(const Json& j) {
  if (j.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(j);
  if (type == "Sequence") {
    for (const Json& p : j.at("processors")) RETURN_IF_ERROR(ParsePostProcessor(p));
    return absl::OkStatus();
  }
  if (type == "ByteLevel") return absl::OkStatus();  // offsets only
  if (type != "TemplateProcessing")
    return Unsupported(absl::StrCat("post_processor '", type, "'"), j);
  bool seen_sequence = false;
  for (const Json& item : j.at("single")) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const std::string name = item.at("SpecialToken").at("id").get<std::string>();
    const Json& special = j.at("special_tokens").at(name);
    for (const Json& id : special.at("ids")) {
      ASSIGN_OR_RETURN(const int32_t value, IdOf(id, "post_processor"));
      (seen_sequence ? suffix_ : prefix_).push_back(value);
    }
  }
  if (!seen_sequence) return Unsupported("TemplateProcessing without $A", j);
  return absl::OkStatus();
}

absl::Status JsonTokenizer::ParseModel(const Json& j) {
  const std::string type = j.is_object() ? j.value("type", std::string("BPE")) : "";
  if (type != "BPE") return Unsupported(absl::StrCat("model '", type, "'"), j);
  if (!j.value("dropout", Json()).is_null()) return Unsupported("BPE dropout", j.at("dropout"));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!j.value(key, Json()).is_null()) return Unsupported(absl::StrCat("BPE ", key), j.at(key));
  }
  std::unordered_map<std::string, int32_t> vocab;
  for (const auto& [token, id] : j.at("vocab").items()) {
    ASSIGN_OR_RETURN(vocab[token], IdOf(id, absl::StrCat("vocab '", token, "'")));
  }
  std::vector<std::pair<std::string, std::string>> merges;
  for (const Json& m : j.at("merges")) {
    if (m.is_array()) {
      merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
      continue;
    }
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ', 1);  // "a b"; a may not be empty
    if (space == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("merge '", s, "' is not two tokens"));
    }
    merges.emplace_back(s.substr(0, space), s.substr(space + 1));
  }
  BpeModel::Options options;
  if (!j.value("unk_token", Json()).is_null())
    options.unk_token = j.at("unk_token").get<std::string>();
  options.fuse_unk = j.value("fuse_unk", false);
  options.byte_fallback = j.value("byte_fallback", false);
  options.ignore_merges = j.value("ignore_merges", false);
  ASSIGN_OR_RETURN(model_, BpeModel::Create(std::move(vocab), merges, std::move(options)));
  return absl::OkStatus();
}

absl::Status JsonTokenizer::Build(const Json& root) {
  if (!root.is_object()) return absl::InvalidArgumentError("not a JSON object");
  RETURN_IF_ERROR(ParseModel(root.at("model")));
  RETURN_IF_ERROR(ParseAddedTokens(root.value("added_tokens", Json())));
  RETURN_IF_ERROR(ParseNormalizer(root.value("normalizer", Json())));
  RETURN_IF_ERROR(NormalizeAddedTokens());
  RETURN_IF_ERROR(ParsePreTokenizer(root.value("pre_tokenizer", Json())));
  RETURN_IF_ERROR(ParsePostProcessor(root.value("post_processor", Json())));
  ASSIGN_OR_RETURN(decoder_, ParseDecoder(root.value("decoder", Json())));
  int64_t max_id = model_->max_id();
  for (const AddedToken& a : added_) max_id = std::max<int64_t>(max_id, a.id);
  for (const int32_t id : prefix_) max_id = std::max<int64_t>(max_id, id);
  for (const int32_t id : suffix_) max_id = std::max<int64_t>(max_id, id);
  vocab_size_ = max_id + 1;
  description_ = absl::StrFormat("tokenizer.json: BPE%s, %d ids, %d merges, %d added tokens",
                                 byte_level_ ? " (byte-level)" : "", vocab_size_,
                                 model_->merge_count(), added_.size());
  return absl::OkStatus();
}

// tokenizers' AddedVocabulary::find_matches over the tokens with
// `normalized` == normalized: leftmost match, longest at that position.
absl::StatusOr<std::vector<Part>> JsonTokenizer::SplitAdded(std::string_view text,
                                                            bool normalized) const {
  std::vector<Part> parts;
  // next[k]: where added_[k] next occurs at or after `from` (npos: never);
  // positions only move forward, so each token's searches scan the text once.
  std::vector<size_t> next(added_.size(), std::string_view::npos);
  for (size_t k = 0; k < added_.size(); ++k) {
    if (added_[k].normalized == normalized) next[k] = text.find(added_[k].content);
  }
  size_t done = 0;  // end of the last part
  size_t from = 0;  // where the next search starts
  while (from < text.size()) {
    const AddedToken* best = nullptr;
    size_t best_at = std::string_view::npos;
    for (size_t k = 0; k < added_.size(); ++k) {
      const AddedToken& a = added_[k];
      if (next[k] == std::string_view::npos) continue;  // absent, or the other pass's
      if (next[k] < from) next[k] = text.find(a.content, from);
      const size_t at = next[k];
      if (at == std::string_view::npos) continue;
      if (best == nullptr || at < best_at ||
          (at == best_at && a.content.size() > best->content.size())) {
        best = &a, best_at = at;
      }
    }
    if (best == nullptr) break;
    size_t start = best_at, stop = best_at + best->content.size();
    from = stop;
    if (best->single_word) {
      ASSIGN_OR_RETURN(const auto before, word_end_->FindAll(text.substr(0, start)));
      ASSIGN_OR_RETURN(const auto after, word_start_->FindAll(text.substr(stop)));
      if (!before.empty() || !after.empty()) continue;
    }
    if (best->lstrip) start = std::max(WhitespaceRunStart(text.substr(0, start)), done);
    if (best->rstrip) stop += WhitespaceRunLength(text.substr(stop));
    if (done < start) {
      parts.push_back({std::nullopt, std::string(text.substr(done, start - done)), done == 0});
    }
    parts.push_back({best->id, "", false});
    done = stop;
    from = std::max(from, stop);
  }
  if (done < text.size())
    parts.push_back({std::nullopt, std::string(text.substr(done)), done == 0});
  return parts;
}

absl::StatusOr<std::string> JsonTokenizer::NormalizeText(std::string text) const {
  for (const NormalizerStep& step : normalizers_) {
    switch (step.kind) {
      case NormalizerStep::kForm: {
        ASSIGN_OR_RETURN(text, Normalize(text, step.form));
        break;
      }
      case NormalizerStep::kPrepend:
        if (!text.empty()) text.insert(0, step.text);
        break;
      case NormalizerStep::kReplace: {
        ASSIGN_OR_RETURN(text, step.pattern->ReplaceAll(text, step.text));
        break;
      }
    }
  }
  return text;
}

absl::Status JsonTokenizer::EncodeText(Piece piece, std::vector<int32_t>* out) const {
  std::vector<Piece> pieces = {std::move(piece)};
  for (const auto& step : pre_tokenizers_) RETURN_IF_ERROR(step->Apply(&pieces));
  for (const Piece& word : pieces) model_->EncodeWord(word.text, out);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> JsonTokenizer::Encode(std::string_view text) const {
  if (text.size() > kMaxEncodeBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("text of ", text.size(), " bytes is over the 1 GiB limit"));
  }
  size_t bad = 0;
  if (!IsValidUtf8(text, &bad)) {
    return absl::InvalidArgumentError(absl::StrCat("text is not valid UTF-8 at byte ", bad));
  }
  std::vector<int32_t> ids = prefix_;
  ASSIGN_OR_RETURN(const std::vector<Part> raw_parts, SplitAdded(text, /*normalized=*/false));
  for (const Part& raw : raw_parts) {
    if (raw.id) {
      ids.push_back(*raw.id);
      continue;
    }
    ASSIGN_OR_RETURN(const std::string normal, NormalizeText(raw.text));
    ASSIGN_OR_RETURN(const std::vector<Part> parts, SplitAdded(normal, /*normalized=*/true));
    for (const Part& p : parts) {
      if (p.id) {
        ids.push_back(*p.id);
      } else {
        RETURN_IF_ERROR(EncodeText({p.text, raw.at_start && p.at_start}, &ids));
      }
    }
  }
  ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  return ids;
}

std::string JsonTokenizer::Decode(std::span<const int32_t> ids) const {
  std::vector<std::string> tokens;
  for (const int32_t id : ids) {
    // An added token wins over the model's entry for the same id.
    if (const auto added = added_by_id_.find(id); added != added_by_id_.end()) {
      const AddedToken& a = added_[added->second];
      if (!a.special) tokens.push_back(a.content);
    } else if (const std::string* t = model_->TokenOf(id)) {
      tokens.push_back(*t);
    }
  }
  if (decoder_ == nullptr) return absl::StrJoin(tokens, " ");
  return absl::StrJoin(decoder_->DecodeChain(std::move(tokens)), "");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> ParseTokenizerJson(std::string_view json,
                                                              const std::string& where) {
  const Json root = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return absl::InvalidArgumentError(absl::StrCat(where, ": not valid JSON"));
  auto tokenizer = std::make_unique<JsonTokenizer>();
  absl::Status status;
  try {
    status = tokenizer->Build(root);
  } catch (const nlohmann::json::exception& e) {
    status = absl::InvalidArgumentError(e.what());
  }
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat(where, ": ", status.message()));
  }
  return tokenizer;
}

}  // namespace glvq::text
