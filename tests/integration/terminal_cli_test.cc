// `glvq quantize` as a person sees it: driven in a pseudo-terminal
// (util-linux `script`) of a given width, the progress line is redrawn in
// place and always fits the terminal, and the final report follows; with
// stderr not a terminal the same run prints plain lines instead.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

namespace fs = std::filesystem;

std::string Glvq() { return (BinDir() / "glvq").string(); }

// The progress lines of `output`: every piece between \r and \n that shows
// a percentage and a task count ("  45%  3/35 tasks ..."), with the
// erase-to-end-of-line sequence removed.
std::vector<std::string> ProgressLines(const std::string& output) {
  std::vector<std::string> lines;
  std::string piece;
  auto flush = [&] {
    piece = absl::StrReplaceAll(piece, {{"\033[K", ""}});
    if (piece.find("% ") != std::string::npos && piece.find(" tasks") != std::string::npos) {
      lines.push_back(piece);
    }
    piece.clear();
  };
  for (char c : output) {
    if (c == '\r' || c == '\n') {
      flush();
    } else {
      piece += c;
    }
  }
  flush();
  return lines;
}

class TerminalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Stories260KDir() / "model.safetensors")) GTEST_SKIP() << "no stories260K";
    if (RunCommand("command -v script").exit_code != 0) GTEST_SKIP() << "no util-linux script";
  }
  std::string QuantizeCommand(const std::string& out) const {
    return Glvq() + " quantize --model " + Stories260KDir().string() + " --out " +
           (dir_ / out).string() + " --method gptq --bits 4 --workers 1";
  }
  // Runs `command` in a pseudo-terminal `columns` wide; its stdout and
  // stderr both arrive on the terminal, i.e. in the result's `out`.
  CommandResult InTerminal(const std::string& command, int columns) const {
    return RunCommand("script -qfec 'stty cols " + std::to_string(columns) + " rows 24; " +
                      command + "' /dev/null < /dev/null");
  }
  ScratchDir dir_;
};

TEST_F(TerminalCli, TheProgressLineFitsTheTerminalAndTheReportFollows) {
  for (int columns : {80, 40}) {
    SCOPED_TRACE(columns);
    const std::string out = absl::StrCat("q", columns);
    const CommandResult r = InTerminal(QuantizeCommand(out), columns);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find('\r'), std::string::npos) << "a terminal gets the redrawn bar";
    const std::vector<std::string> lines = ProgressLines(r.out);
    ASSERT_GE(lines.size(), 2u) << r.out;
    for (const std::string& line : lines) {
      EXPECT_LE(line.size(), static_cast<size_t>(columns - 1)) << line;
    }
    if (columns == 80) {
      EXPECT_EQ(lines.front().front(), '[') << "80 columns keep the bar: " << lines.front();
    }
    EXPECT_NE(lines.back().find("SUCCEEDED"), std::string::npos) << lines.back();
    EXPECT_NE(r.out.find("total: 226560 weights quantized"), std::string::npos) << r.out;
  }
}

TEST_F(TerminalCli, WithoutATerminalProgressIsPlainLines) {
  const CommandResult r = RunCommand(QuantizeCommand("plain"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("\033["), std::string::npos) << "no escape sequences: " << r.err;
  const std::vector<std::string> lines = ProgressLines(r.err);
  ASSERT_GE(lines.size(), 2u) << r.err;
  EXPECT_NE(lines.front().find("RUNNING"), std::string::npos) << lines.front();
  EXPECT_NE(lines.back().find("SUCCEEDED"), std::string::npos) << lines.back();
  EXPECT_NE(lines.front().front(), '[') << "no bar in plain lines";
  EXPECT_NE(r.out.find("total: 226560 weights quantized"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace glvq::testing
