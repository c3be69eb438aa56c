// Small JSON text helpers shared by the safetensors reader and writer
// (internal to common/safetensors).
#pragma once

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace glvq::safetensors_internal {

// `text` as a JSON string literal, for error messages: names with quotes,
// control characters or invalid UTF-8 stay readable and unambiguous.
inline std::string Quote(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// nlohmann's message without its "[json.exception...] " tag. The message
// quotes the offending input raw; bytes outside printable ASCII become '?'
// so that a status message is always valid UTF-8.
inline std::string JsonErrorText(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  if (const size_t tag_end = what.find("] "); tag_end != std::string_view::npos) {
    what.remove_prefix(tag_end + 2);
  }
  std::string text(what);
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
  }
  return text;
}

}  // namespace glvq::safetensors_internal
