#include "common/base/one_line.h"

#include <algorithm>
#include <cstdio>

namespace glvq {
namespace {

// The escaped form of byte c, or empty if it is kept as it is.
std::string Escape(unsigned char c) {
  switch (c) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
  }
  if (c >= 0x20 && c != 0x7f) return {};
  char buf[5];
  std::snprintf(buf, sizeof buf, "\\x%02x", c);
  return buf;
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

std::string OneLine(std::string_view message, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(message.size(), max_bytes) + 32);
  size_t i = 0;
  for (; i < message.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(message[i]);
    const std::string escaped = Escape(c);
    const size_t width = escaped.empty() ? 1 : escaped.size();
    if (out.size() + width > max_bytes) break;
    if (escaped.empty()) {
      out.push_back(static_cast<char>(c));
    } else {
      out += escaped;
    }
  }
  if (i == message.size()) return out;
  // Do not end inside a multi-byte character: drop its lead and
  // continuation bytes already copied.
  while (i > 0 && !out.empty() && IsContinuation(static_cast<unsigned char>(message[i]))) {
    --i;
    out.pop_back();
  }
  out += "… (" + std::to_string(message.size() - i) + " more bytes)";
  return out;
}

std::string QuoteInput(std::string_view input, size_t max_bytes) {
  return "'" + OneLine(input, max_bytes) + "'";
}

std::string ErrorLine(const absl::Status& status) {
  const absl::string_view m = status.message();
  return OneLine(std::string_view(m.data(), m.size()));
}

}  // namespace glvq
