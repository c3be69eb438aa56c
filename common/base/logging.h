// Levelled logging to stderr. The threshold comes from the environment
// variable GLVQ_LOG_LEVEL (error|warn|info|debug; default warn) so that
// command-line tools stay quiet and services can be made verbose.
//
//   GLVQ_LOG(kInfo) << "loaded " << n << " tensors";
#pragma once

#include <sstream>
#include <string_view>

namespace glvq {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// The active threshold (read once from GLVQ_LOG_LEVEL, then cached).
LogLevel CurrentLogLevel();
// Overrides the threshold for this process (e.g. from a --verbose flag).
void SetLogLevel(LogLevel level);

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
