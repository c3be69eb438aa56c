#include "common/base/one_line.h"

#include <gtest/gtest.h>

#include <string>

namespace glvq {
namespace {

TEST(OneLineTest, KeepsAPlainMessage) {
  EXPECT_EQ(OneLine("job 'a' failed: no such file"), "job 'a' failed: no such file");
  EXPECT_EQ(OneLine("µ ≥ 0 — fine"), "µ ≥ 0 — fine");
}

TEST(OneLineTest, EscapesLineBreaksAndControlBytes) {
  const std::string bom_nul = std::string("\xEF\xBB\xBF") + "a" + std::string(1, '\0') + "b";
  EXPECT_EQ(OneLine("line 1\nline 2\r\tx"), "line 1\\nline 2\\r\\tx");
  EXPECT_EQ(OneLine(bom_nul), "\xEF\xBB\xBF" "a\\x00b");
  EXPECT_EQ(OneLine(std::string("\x1b[31mred\x7f")), "\\x1b[31mred\\x7f");
  EXPECT_EQ(OneLine(bom_nul).find('\n'), std::string::npos);
}

TEST(OneLineTest, CutsLongInputAndSaysHowMuchWasCut) {
  const std::string huge(8 << 20, 'n');
  const std::string out = OneLine("name " + huge + " is too long");
  EXPECT_LE(out.size(), kMaxMessageBytes + 40);
  EXPECT_EQ(out.substr(0, 6), "name n");
  EXPECT_NE(out.find("… (" + std::to_string(huge.size() + 17 - kMaxMessageBytes) + " more bytes)"),
            std::string::npos)
      << out.substr(out.size() - 40);
}

TEST(OneLineTest, NeverCutsInsideACharacterOrAnEscape) {
  // "é" is two bytes: a cut after 3 bytes of "aéé" keeps "aé", not half of the second.
  EXPECT_EQ(OneLine("a\xC3\xA9\xC3\xA9z", 4), "a\xC3\xA9… (3 more bytes)");
  // An escape is whole or absent.
  EXPECT_EQ(OneLine("ab\ncd", 3), "ab… (3 more bytes)");
  EXPECT_EQ(OneLine("ab\ncd", 4), "ab\\n… (2 more bytes)");
}

TEST(OneLineTest, QuotesInputShort) {
  EXPECT_EQ(QuoteInput("x\ny"), "'x\\ny'");
  const std::string q = QuoteInput(std::string(1000, 'a'));
  EXPECT_EQ(q.substr(0, 4), "'aaa");
  EXPECT_NE(q.find("(920 more bytes)'"), std::string::npos) << q;
}

}  // namespace
}  // namespace glvq
