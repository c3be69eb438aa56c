// Error messages are one line of bounded length, whatever the input they
// quote. A client can send an 8 MiB job name or a YAML file with a BOM and a
// NUL in it; echoed verbatim, the first overflows gRPC's status metadata
// (the client then sees a transport error instead of the real one) and the
// second breaks log and terminal lines. These helpers are applied where
// messages leave a process: the gRPC boundary (common/rpc/grpc_util.h) and
// every binary's error print (common/cli/standard_flags.h).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace glvq {

// Longest message OneLine lets through, in bytes (before its suffix): far
// below gRPC's 8 KiB default metadata limit, long enough for any message
// glvq writes itself.
inline constexpr size_t kMaxMessageBytes = 1024;

// `message` as one line: CR, LF and TAB become "\r", "\n", "\t", other
// control bytes (and DEL) "\xNN"; cut at `max_bytes` of output (never inside
// a UTF-8 sequence or an escape), the cut marked "… (N more bytes)".
std::string OneLine(std::string_view message, size_t max_bytes = kMaxMessageBytes);

// Client input quoted inside a message: OneLine(input, max_bytes) between
// single quotes. For names, paths and values echoed back to their sender.
std::string QuoteInput(std::string_view input, size_t max_bytes = 80);

// OneLine(status.message()): how a binary prints a failed Status.
std::string ErrorLine(const absl::Status& status);

}  // namespace glvq
