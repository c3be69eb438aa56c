// What every binary's command line has in common (common/cli/standard_flags.h):
// --version from the build's one version, --log-level, exit code 2 on usage
// errors (not CLI11's own codes), "did you mean" for typos, and the log line
// format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "common/base/logging.h"
#include "glvq_version.h"
#include "tests/support/test_support.h"

namespace glvq {
namespace {

using ::testing::HasSubstr;

std::string Bin(const std::string& name) { return (testing::BinDir() / name).string(); }

TEST(StandardFlags, EveryBinaryHasVersionLogLevelAndUsageExitCode2) {
  for (const std::string name : {"glvq", "glvq-coordinator", "glvq-worker", "glvq-bench"}) {
    SCOPED_TRACE(name);
    const testing::CommandResult version = testing::RunCommand(Bin(name) + " --version");
    EXPECT_EQ(version.exit_code, 0) << version.err;
    EXPECT_EQ(version.out, name + " " + GLVQ_VERSION + "\n");
    const testing::CommandResult unknown = testing::RunCommand(Bin(name) + " --no-such-flag");
    EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
    EXPECT_THAT(unknown.err, HasSubstr("Run with --help"));
    const testing::CommandResult level = testing::RunCommand(Bin(name) + " --log-level loud");
    EXPECT_EQ(level.exit_code, 2);
    EXPECT_THAT(level.err, HasSubstr("--log-level"));
  }
}

TEST(StandardFlags, AMistypedFlagOrCommandGetsADidYouMean) {
  const auto flag = testing::RunCommand(Bin("glvq") + " quantize --bitz 3 --treads=2 --model m");
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_THAT(flag.err, HasSubstr("glvq: unknown flag --bitz; did you mean --bits?\n"));
  EXPECT_THAT(flag.err, HasSubstr("glvq: unknown flag --treads; did you mean --threads?\n"));
  const auto command = testing::RunCommand(Bin("glvq") + " quantiz --bits 2");
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_THAT(command.err, HasSubstr("glvq: unknown command 'quantiz'; did you mean 'quantize'?"));
  const auto daemon = testing::RunCommand(Bin("glvq-coordinator") + " --listn 127.0.0.1:0");
  EXPECT_THAT(daemon.err, HasSubstr("unknown flag --listn; did you mean --listen?"));
  const auto far = testing::RunCommand(Bin("glvq") + " quantize --completely-unrelated 1");
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_THAT(far.err, ::testing::Not(HasSubstr("did you mean"))) << "no wild guesses";
}

// Every glvq subcommand's --help ends with examples, and every flag an
// example uses is one the subcommand has (the examples cannot rot).
TEST(StandardFlags, EverySubcommandsHelpHasExamplesThatUseRealFlags) {
  const std::string top = testing::RunCommand(Bin("glvq") + " --help").out;
  const std::string list = top.substr(top.find("Subcommands:"));
  std::smatch m, f;
  const std::regex subcommand(R"(\n  ([a-z][a-z-]*) )"), flag(R"((--[a-z][a-z-]*))");
  int checked = 0;
  for (auto it = list.cbegin(); std::regex_search(it, list.cend(), m, subcommand);
       it = m.suffix().first) {
    const std::string name = m[1];
    SCOPED_TRACE(name);
    const std::string help = testing::RunCommand(Bin("glvq") + " " + name + " --help").out;
    const size_t examples = help.find("\nExamples:\n");
    ASSERT_NE(examples, std::string::npos) << help;
    const std::string text = help.substr(examples), options = help.substr(0, examples);
    for (auto at = text.cbegin(); std::regex_search(at, text.cend(), f, flag);
         at = f.suffix().first) {
      EXPECT_NE(options.find(std::string(f[1]) + " "), std::string::npos) << f[1] << " in\n" << text;
    }
    ++checked;
  }
  EXPECT_GE(checked, 16);
}

TEST(StandardFlags, LogLevelFlagMakesTheWorkerTalk) {
  // A worker with no coordinator logs its registration attempts at warn;
  // at --log-level error it says nothing.
  const std::string cmd = "timeout 2 " + Bin("glvq-worker") +
                          " --coordinator 127.0.0.1:1 --log-level ";
  const testing::CommandResult quiet = testing::RunCommand(cmd + "error");
  EXPECT_EQ(quiet.err.find("cannot register"), std::string::npos) << quiet.err;
  const testing::CommandResult warn = testing::RunCommand(cmd + "warn");
  EXPECT_THAT(warn.err, HasSubstr("cannot register (attempt 1,"));
  // Attempts 1, 2 and (within 2 s) at most 4 are logged, not all ~4 of them.
  EXPECT_EQ(warn.err.find("(attempt 3,"), std::string::npos) << warn.err;
}

TEST(Logging, LinesCarryLevelUtcTimeThreadAndSource) {
  ::testing::internal::CaptureStderr();
  const LogLevel saved = CurrentLogLevel();
  SetLogLevel(LogLevel::kInfo);
  GLVQ_LOG(kInfo) << "hello";
  GLVQ_LOG(kDebug) << "hidden";
  SetLogLevel(saved);
  const std::string text = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(std::regex_match(
      text, std::regex(R"(I \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \d+ standard_flags_test\.cc:\d+\] hello\n)")))
      << text;
  EXPECT_EQ(ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("loud").has_value());
}

}  // namespace
}  // namespace glvq
