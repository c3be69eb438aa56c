// Levelled logging to stderr, one line per message:
//   W 2026-12-07T06:30:01.123Z 12345 worker.cc:262] text
// (level, UTC time to the millisecond, thread id, source). The threshold
// comes from --log-level on every binary, else the environment variable
// GLVQ_LOG_LEVEL (error|warn|info|debug; default warn), so that
// command-line tools stay quiet and services can be made verbose.
//
//   GLVQ_LOG(kInfo) << "loaded " << n << " tensors";
#pragma once

#include <optional>
#include <sstream>
#include <string_view>

namespace glvq {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// The active threshold (read once from GLVQ_LOG_LEVEL, then cached).
LogLevel CurrentLogLevel();
// Overrides the threshold for this process (the binaries' --log-level).
void SetLogLevel(LogLevel level);
// "error", "warn", "info", "debug"; nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(std::string_view name);

namespace internal {
// Collects one message and writes it as a single line when destroyed.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace glvq

#define GLVQ_LOG(level)                                             \
  if (::glvq::LogLevel::level > ::glvq::CurrentLogLevel()) {        \
  } else                                                            \
    ::glvq::internal::LogMessage(::glvq::LogLevel::level, __FILE__, \
                                 __LINE__)                          \
        .stream()
