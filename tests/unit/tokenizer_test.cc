// Tokenizers (common/text): split behaviours against the examples in the
// Hugging Face tokenizers documentation, BPE merge order, added tokens,
// hostile tokenizer.json files, and calibration windows. Agreement with the
// reference libraries on real tokenizers is tests/interop/tokenizer_interop.py.
#include "common/text/tokenizer.h"

#include <string>
#include <vector>

#include "common/text/decoder.h"
#include "common/text/pre_tokenizer.h"
#include "common/text/regex.h"
#include "common/text/token_windows.h"
#include "common/text/tokenizer_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace glvq::text {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Pieces(std::string_view text, SplitBehavior behavior,
                                bool invert = false) {
  const auto dash = Regex::Literal("-");
  EXPECT_TRUE(dash.ok());
  const auto matches = dash->FindAll(text);
  EXPECT_TRUE(matches.ok());
  std::vector<std::string> out;
  for (const ByteSpan& s : SplitSpans(text, *matches, behavior, invert)) {
    out.emplace_back(text.substr(s.first, s.second - s.first));
  }
  return out;
}

// The example of tokenizers' SplitDelimiterBehavior documentation.
TEST(SplitSpans, TheDocumentedBehaviours) {
  const std::string t = "the-final--countdown";
  EXPECT_THAT(Pieces(t, SplitBehavior::kRemoved), ElementsAre("the", "final", "countdown"));
  EXPECT_THAT(Pieces(t, SplitBehavior::kIsolated),
              ElementsAre("the", "-", "final", "-", "-", "countdown"));
  EXPECT_THAT(Pieces(t, SplitBehavior::kMergedWithPrevious),
              ElementsAre("the-", "final-", "-", "countdown"));
  EXPECT_THAT(Pieces(t, SplitBehavior::kMergedWithNext),
              ElementsAre("the", "-final", "-", "-countdown"));
  EXPECT_THAT(Pieces(t, SplitBehavior::kContiguous),
              ElementsAre("the", "-", "final", "--", "countdown"));
  // invert: the non-dashes are the matches, so Removed keeps the dashes.
  EXPECT_THAT(Pieces(t, SplitBehavior::kRemoved, /*invert=*/true), ElementsAre("-", "-", "-"));
}

TEST(Regex, UnicodeClassesAndLookahead) {
  const auto re = Regex::Compile(R"( ?\p{L}+|\p{N}|\s+(?!\S)|\s+)");
  ASSERT_TRUE(re.ok()) << re.status();
  const std::string text = "Größe 42  東京";
  const auto spans = re->FindAll(text);
  ASSERT_TRUE(spans.ok());
  std::vector<std::string> got;
  for (const auto& [b, e] : *spans) got.push_back(text.substr(b, e - b));
  EXPECT_THAT(got, ElementsAre("Größe", " ", "4", "2", " ", " 東京"));
  EXPECT_EQ(Regex::Compile("(unclosed").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Regex, EmptyMatchesEndTheLoop) {
  const auto re = Regex::Compile("x*");
  ASSERT_TRUE(re.ok());
  const auto spans = re->FindAll("abxxc");
  ASSERT_TRUE(spans.ok());
  // An empty match right after a match is skipped (tokenizers' find_iter).
  EXPECT_THAT(*spans, ElementsAre(ByteSpan{0, 0}, ByteSpan{1, 1}, ByteSpan{2, 4}, ByteSpan{5, 5}));
}

TEST(Utf8, RejectsMalformedSequences) {
  size_t at = 99;
  EXPECT_TRUE(IsValidUtf8("plain ✓ 🙂"));
  EXPECT_FALSE(IsValidUtf8("ab\xC0\xAF", &at));  // overlong '/'
  EXPECT_EQ(at, 2u);
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // a UTF-16 surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x9C"));          // truncated
}

TEST(ByteLevel, PrintableBytesStandForThemselves) {
  EXPECT_EQ(ByteLevelChar('a'), "a");
  EXPECT_EQ(ByteLevelChar(' '), "\xC4\xA0");   // Ġ = U+0120
  EXPECT_EQ(ByteLevelChar('\n'), "\xC4\x8A");  // Ċ = U+010A
  EXPECT_EQ(ByteLevelChar(0xAD), "\xC5\x83");  // the last non-printable: U+0143
}

// A small byte-level tokenizer: every single byte, then merges in rank order.
nlohmann::json SmallTokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteLevelChar(static_cast<unsigned char>(b))] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"l", "o"}, {"h", "e"}, {"he", "lo"}, {"lo", "w"}, {"\xC4\xA0", "lo"}};
  nlohmann::json m = nlohmann::json::array();
  int id = 256;
  for (const auto& [a, b] : merges) {
    vocab[a + b] = id++;
    m.push_back(a + " " + b);
  }
  return {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 300},
         {"content", "<|end|>"},
         {"special", true},
         {"lstrip", false},
         {"rstrip", false}},
        {{"id", 301},
         {"content", "<pad>"},
         {"special", true},
         {"lstrip", true},
         {"rstrip", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
}

std::vector<int32_t> Encode(const nlohmann::json& j, std::string_view text) {
  const auto t = ParseTokenizerJson(j.dump(), "small.json");
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return {};
  const auto ids = (*t)->Encode(text);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(JsonTokenizer, MergesByRankThenLeftmost) {
  // "hello": h e l l o → (l o) rank 0 → h e l lo → (h e) rank 1 → he l lo;
  // "he"+"lo" never meet, so: he, l, lo.
  EXPECT_THAT(Encode(SmallTokenizer(), "hello"), ElementsAre(257, 'l', 256));
  // "low lo": lo+w (rank 3), then " lo" (rank 4; the space is Ġ).
  EXPECT_THAT(Encode(SmallTokenizer(), "low lo"), ElementsAre(259, 260));
  // "helo": lo first, then he, then he+lo (rank 2).
  EXPECT_THAT(Encode(SmallTokenizer(), "helo"), ElementsAre(258));
}

TEST(JsonTokenizer, AddedTokensSplitFirstAndStripWhitespace) {
  EXPECT_THAT(Encode(SmallTokenizer(), "lo<|end|>lo"), ElementsAre(256, 300, 256));
  // <pad> has lstrip and rstrip: the spaces around it are its own.
  EXPECT_THAT(Encode(SmallTokenizer(), "lo  <pad>  lo"), ElementsAre(256, 301, 256));
}

TEST(JsonTokenizer, TemplateAddsSpecialTokens) {
  nlohmann::json j = SmallTokenizer();
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}}}}};
  EXPECT_THAT(Encode(j, "lo"), ElementsAre(300, 256));
}

absl::Status Parse(const nlohmann::json& j) {
  return ParseTokenizerJson(j.dump(), "t.json").status();
}

TEST(JsonTokenizer, RefusesWhatItDoesNotImplementByName) {
  nlohmann::json j = SmallTokenizer();
  j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  EXPECT_EQ(Parse(j).code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Parse(j).message(), HasSubstr("BertPreTokenizer"));
  j = SmallTokenizer();
  j["model"]["type"] = "WordPiece";
  EXPECT_THAT(Parse(j).message(), HasSubstr("WordPiece"));
  j = SmallTokenizer();
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_THAT(Parse(j).message(), HasSubstr("Lowercase"));
}

TEST(JsonTokenizer, RefusesHostileFiles) {
  EXPECT_EQ(ParseTokenizerJson("{not json", "t.json").status().code(),
            absl::StatusCode::kInvalidArgument);
  nlohmann::json j = SmallTokenizer();
  j["model"]["vocab"]["big"] = 4294967296;  // would wrap to 0 as int32
  EXPECT_THAT(Parse(j).message(), HasSubstr("is not in [0, 2^31 - 1)"));
  j = SmallTokenizer();
  j["model"]["merges"].push_back("zz q");
  EXPECT_THAT(Parse(j).message(), HasSubstr("not in the vocabulary"));
  j = SmallTokenizer();
  j["model"]["vocab"]["dup"] = 5;  // id 5 is a byte already
  EXPECT_THAT(Parse(j).message(), HasSubstr("given twice"));
  j = SmallTokenizer();
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(("}}}, {"behavior", "Isolated"}};
  EXPECT_THAT(Parse(j).message(), HasSubstr("does not compile"));
  j = SmallTokenizer();
  j["model"]["vocab"] = "nope";
  EXPECT_EQ(Parse(j).code(), absl::StatusCode::kInvalidArgument);
}

TEST(JsonTokenizer, RefusesInvalidUtf8Text) {
  const auto t = ParseTokenizerJson(SmallTokenizer().dump(), "small.json");
  ASSERT_TRUE(t.ok());
  const auto ids = (*t)->Encode("ok \xFF");
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ids.status().message(), HasSubstr("byte 3"));
  EXPECT_EQ((*t)->vocab_size(), 302);
}

TEST(Utf8Lossy, ReplacesMaximalInvalidSubpartsAsRustDoes) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Utf8Lossy("ok \xF0\x9F\x99\x82"), "ok \xF0\x9F\x99\x82");  // 🙂 intact
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\x99" "A"), fffd + "A");      // truncated: one U+FFFD
  EXPECT_EQ(Utf8Lossy("\xE0\x80\x80"), fffd + fffd + fffd);  // overlong: each byte
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate: each byte
  EXPECT_EQ(Utf8Lossy("a\xFF" "b"), "a" + fffd + "b");
}

TEST(JsonTokenizer, DecodeUndoesEncodeAndSkipsSpecialTokens) {
  nlohmann::json j = SmallTokenizer();
  j["decoder"] = {{"type", "ByteLevel"}};
  const auto t = ParseTokenizerJson(j.dump(), "small.json");
  ASSERT_TRUE(t.ok()) << t.status();
  const std::string text = "hello low\n\tcafé 🙂";
  const auto ids = (*t)->Encode(text);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ((*t)->Decode(*ids), text);
  // <|end|> is special: skipped; an id no token has: dropped.
  EXPECT_EQ((*t)->Decode(std::vector<int32_t>{256, 300, 99999, 256}), "lolo");
  j["decoder"] = {{"type", "CTC"}};
  EXPECT_THAT(Parse(j).message(), HasSubstr("decoder 'CTC' is not supported"));
}

TEST(LoadTokenizer, NamesWhatIsMissing) {
  const auto t = LoadTokenizer("/nonexistent-dir-for-glvq-test");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
}

TEST(CutWindows, ConsecutiveWindowsAndSeparators) {
  const std::vector<std::vector<int32_t>> docs = {{1, 2, 3}, {4, 5}, {6, 7, 8, 9}};
  WindowOptions o;
  o.seq_len = 3;
  o.separator = 0;
  const auto w = CutWindows(docs, o);
  ASSERT_TRUE(w.ok()) << w.status();
  // The stream 1 2 3 0 4 5 0 6 7 8 9: three windows; the remainder 8 9 is dropped.
  EXPECT_EQ(w->stream_tokens, 11);
  EXPECT_THAT(w->sequences,
              ElementsAre(ElementsAre(1, 2, 3), ElementsAre(0, 4, 5), ElementsAre(0, 6, 7)));
  o.seq_len = 0;  // whole documents
  EXPECT_THAT(CutWindows(docs, o)->sequences.size(), 3u);
}

TEST(CutWindows, SamplesAreSeededDistinctAndInTextOrder) {
  std::vector<std::vector<int32_t>> docs(1);
  for (int i = 0; i < 1000; ++i) docs[0].push_back(i);
  WindowOptions o;
  o.seq_len = 10;
  o.samples = 7;
  o.seed = 3;
  const auto a = CutWindows(docs, o), b = CutWindows(docs, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->sequences, b->sequences);
  ASSERT_EQ(a->sequences.size(), 7u);
  for (size_t i = 0; i < a->sequences.size(); ++i) {
    EXPECT_EQ(a->sequences[i][0] % 10, 0);  // window boundaries
    if (i > 0) {
      EXPECT_LT(a->sequences[i - 1][0], a->sequences[i][0]);
    }
  }
  o.seed = 4;
  EXPECT_NE(CutWindows(docs, o)->sequences, a->sequences);
  o.samples = 101;  // only 100 windows
  EXPECT_THAT(CutWindows(docs, o).status().message(), HasSubstr("100 windows of 10 tokens"));
}

}  // namespace
}  // namespace glvq::text
