#include "common/safetensors/header.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/safetensors/json_text.h"
#include "common/tensor/tensor_view.h"
#include "nlohmann/json.hpp"

namespace glvq {
namespace {

using Json = nlohmann::json;
using safetensors_internal::JsonErrorText;
using safetensors_internal::Quote;

constexpr uint64_t kLengthPrefixBytes = 8;
constexpr std::string_view kMetadataKey = "__metadata__";
// A valid header nests three levels (header, entry, shape). Refusing deep
// nesting up front keeps a bracket bomb from allocating one DOM node per
// level of a 100 MB header.
constexpr int kMaxJsonDepth = 32;
// Longest excerpt of an offending JSON value quoted in an error message.
constexpr size_t kMaxExcerptChars = 64;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

std::string Excerpt(const Json& value) {
  std::string text = value.dump(-1, ' ', true, Json::error_handler_t::replace);
  if (text.size() > kMaxExcerptChars) text = text.substr(0, kMaxExcerptChars) + "...";
  return text;
}

std::string Span(uint64_t begin, uint64_t end) { return absl::StrCat("[", begin, ", ", end, ")"); }

uint64_t LoadLittleEndian64(std::span<const std::byte> bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | std::to_integer<uint64_t>(bytes[i]);
  return value;
}

// What a file that is not safetensors looks like, from its first bytes, for
// the error message: the usual mistakes are a config.json, a PyTorch
// checkpoint and a GGUF file passed as the model. Empty if unknown.
std::string LooksLike(std::span<const std::byte> file) {
  const std::string_view head(reinterpret_cast<const char*>(file.data()),
                              std::min<size_t>(file.size(), 64));
  const size_t first = head.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (head[first] == '{' || head[first] == '[')) {
    return "it is JSON text (a config.json?)";
  }
  if (head.starts_with("GGUF")) return "it is a GGUF file (llama.cpp's format)";
  if (head.starts_with("PK\x03\x04")) return "it is a zip archive (a PyTorch .bin/.pt checkpoint?)";
  if (head.size() >= 2 && head[0] == '\x80' && head[1] >= 2 && head[1] <= 5) {
    return "it is a Python pickle (a PyTorch checkpoint?)";
  }
  return "";
}

absl::StatusOr<uint64_t> ReadHeaderLength(std::span<const std::byte> file) {
  if (file.empty()) return Invalid("file is empty");
  if (file.size() < kLengthPrefixBytes) {
    return Invalid("file is truncated: ", file.size(),
                   " bytes, too short for the 8-byte header length");
  }
  const uint64_t length = LoadLittleEndian64(file.first(kLengthPrefixBytes));
  if (length > file.size() - kLengthPrefixBytes) {
    if (const std::string kind = LooksLike(file); !kind.empty()) {
      return Invalid("not a safetensors file: ", kind,
                     "; pass the model's directory or its .safetensors file");
    }
    return Invalid("header length ", length, " exceeds the file size ", file.size(),
                   ": not a safetensors file, or a truncated one");
  }
  if (length > kMaxSafetensorsHeaderBytes) {
    return Invalid("header length ", length, " exceeds the limit of ", kMaxSafetensorsHeaderBytes,
                   " bytes");
  }
  if (length == 0) return Invalid("header length is 0: the header must be a JSON object");
  return length;
}

// Bracket depth outside strings. Only a bound: malformed text is left for
// the parser to reject with a position.
bool NestsDeeperThan(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit) return true;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return false;
}

// nlohmann keeps the last of duplicate keys without a word, which would let
// two entries for one tensor pass as one; the parser callback sees every key.
class DuplicateKeyFinder {
 public:
  void OnEvent(int depth, Json::parse_event_t event, const Json& parsed) {
    if (event == Json::parse_event_t::object_start && depth == 1) entry_keys_.clear();
    if (event != Json::parse_event_t::key || !error_.empty()) return;
    const auto& key = parsed.get_ref<const std::string&>();
    if (depth == 1) {
      current_entry_ = key;
      if (!top_keys_.insert(key).second) {
        error_ = key == kMetadataKey ? absl::StrCat("duplicate key ", Quote(key))
                                     : absl::StrCat("duplicate tensor name ", Quote(key));
      }
    } else if (depth == 2 && !entry_keys_.insert(key).second) {
      error_ = absl::StrCat(Quote(current_entry_), ": duplicate key ", Quote(key));
    }
  }
  const std::string& error() const { return error_; }

 private:
  std::set<std::string> top_keys_;
  std::set<std::string> entry_keys_;
  std::string current_entry_;
  std::string error_;
};

absl::StatusOr<Json> ParseJson(std::string_view text) {
  if (NestsDeeperThan(text, kMaxJsonDepth)) {
    return Invalid("header JSON nests deeper than ", kMaxJsonDepth, " levels");
  }
  DuplicateKeyFinder finder;
  Json json;
  try {
    json = Json::parse(text, [&finder](int depth, Json::parse_event_t event, Json& parsed) {
      finder.OnEvent(depth, event, parsed);
      return true;
    });
  } catch (const Json::parse_error& e) {
    return Invalid("header is not valid JSON (error at byte ", e.byte,
                   " of the header): ", JsonErrorText(e));
  } catch (const Json::exception& e) {  // e.g. a number too large for a double
    return Invalid("header is not valid JSON: ", JsonErrorText(e));
  }
  if (!finder.error().empty()) return Invalid(finder.error());
  return json;
}

absl::Status ParseMetadata(const Json& value, std::map<std::string, std::string>* metadata) {
  if (!value.is_object()) {
    return Invalid("__metadata__ is not a JSON object but ", value.type_name());
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return Invalid("__metadata__ value for key ", Quote(key), " is not a string but ",
                     Excerpt(item));
    }
    metadata->emplace(key, item.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status CheckEntryKeys(const std::string& where, const Json& entry) {
  for (const char* required : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(required)) return Invalid(where, ": missing \"", required, "\"");
  }
  for (const auto& [key, unused] : entry.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return Invalid(where, ": unknown key ", Quote(key));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DType> ParseDTypeField(const std::string& where, const Json& value) {
  if (!value.is_string()) return Invalid(where, ": dtype is not a string but ", Excerpt(value));
  const auto& name = value.get_ref<const std::string&>();
  const std::optional<DType> dtype = ParseDType(name);
  if (!dtype.has_value()) {
    return Invalid(where, ": unknown or unsupported dtype ", Quote(name),
                   " (glvq reads F32, F16, BF16, I8, U8, I32, I64)");
  }
  return *dtype;
}

// nullopt unless `value` is an integer >= 0 ("-0" included, as JSON allows).
std::optional<uint64_t> NonNegativeInteger(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<uint64_t>();
  return std::nullopt;
}

absl::StatusOr<int64_t> ParseDim(const std::string& where, size_t index, const Json& dim) {
  const std::optional<uint64_t> value = NonNegativeInteger(dim);
  if (value.has_value()) {
    if (*value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(where, ": shape dimension ", index, " (", *value, ") is too large");
    }
    return static_cast<int64_t>(*value);
  }
  if (dim.is_number_integer()) {
    return Invalid(where, ": shape dimension ", index, " is negative (", dim.get<int64_t>(), ")");
  }
  return Invalid(where, ": shape dimension ", index, " is not an integer: ", Excerpt(dim));
}

absl::StatusOr<std::vector<int64_t>> ParseShape(const std::string& where, const Json& value) {
  if (!value.is_array()) return Invalid(where, ": shape is not an array but ", Excerpt(value));
  std::vector<int64_t> shape;
  shape.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    ASSIGN_OR_RETURN(const int64_t dim, ParseDim(where, i, value[i]));
    shape.push_back(dim);
  }
  return shape;
}

// Multiplies in the order TensorView::NumElements does, so that a shape that
// passes here cannot overflow there either.
absl::StatusOr<uint64_t> ByteSize(const std::string& where, const std::vector<int64_t>& shape,
                                  DType dtype) {
  int64_t elements = 1;
  for (const int64_t dim : shape) {
    if (__builtin_mul_overflow(elements, dim, &elements)) {
      return Invalid(where, ": shape ", ShapeToString(shape),
                     " overflows: the element count does not fit in 64 bits");
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(elements), DTypeSize(dtype), &bytes)) {
    return Invalid(where, ": shape ", ShapeToString(shape), " of ", DTypeName(dtype),
                   " overflows: the byte size does not fit in 64 bits");
  }
  return bytes;
}

absl::Status ParseOffsets(const std::string& where, const Json& value, TensorEntry* entry) {
  const bool pair = value.is_array() && value.size() == 2;
  const std::optional<uint64_t> begin = pair ? NonNegativeInteger(value[0]) : std::nullopt;
  const std::optional<uint64_t> end = pair ? NonNegativeInteger(value[1]) : std::nullopt;
  if (!begin.has_value() || !end.has_value()) {
    return Invalid(where, ": data_offsets must be two non-negative integers, got ", Excerpt(value));
  }
  entry->begin = *begin;
  entry->end = *end;
  if (entry->begin > entry->end) {
    return Invalid(where, ": data_offsets begin ", entry->begin, " is after end ", entry->end);
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorEntry> ParseEntry(const std::string& name, const Json& value,
                                       uint64_t data_size) {
  if (name.empty()) return Invalid("empty tensor name");
  const std::string where = absl::StrCat("tensor ", Quote(name));
  if (!value.is_object()) {
    return Invalid(where, ": entry is not a JSON object but ", value.type_name());
  }
  RETURN_IF_ERROR(CheckEntryKeys(where, value));
  TensorEntry entry;
  entry.name = name;
  ASSIGN_OR_RETURN(entry.dtype, ParseDTypeField(where, value.at("dtype")));
  ASSIGN_OR_RETURN(entry.shape, ParseShape(where, value.at("shape")));
  ASSIGN_OR_RETURN(const uint64_t bytes, ByteSize(where, entry.shape, entry.dtype));
  RETURN_IF_ERROR(ParseOffsets(where, value.at("data_offsets"), &entry));
  if (entry.end - entry.begin != bytes) {
    return Invalid(where, ": span/shape mismatch: data_offsets ", Span(entry.begin, entry.end),
                   " hold ", entry.end - entry.begin, " bytes but shape ",
                   ShapeToString(entry.shape), " of ", DTypeName(entry.dtype), " needs ", bytes);
  }
  if (entry.end > data_size) {
    return Invalid(where, ": data_offsets ", Span(entry.begin, entry.end),
                   " extend past the end of the data section (", data_size, " bytes)");
  }
  return entry;
}

// Spans must tile the data section exactly, as the reference implementation
// demands: an uncovered byte is as suspicious as a shared one.
absl::Status CheckTiling(const SafetensorsHeader& header) {
  std::vector<const TensorEntry*> by_offset;
  by_offset.reserve(header.tensors.size());
  for (const TensorEntry& t : header.tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  uint64_t covered = 0;
  const TensorEntry* previous = nullptr;
  for (const TensorEntry* t : by_offset) {
    if (t->begin < covered) {
      return Invalid("tensors ", Quote(previous->name), " ", Span(previous->begin, previous->end),
                     " and ", Quote(t->name), " ", Span(t->begin, t->end), " overlap");
    }
    if (t->begin > covered) {
      return Invalid("hole in the data section: bytes ", Span(covered, t->begin), " before tensor ",
                     Quote(t->name), " belong to no tensor");
    }
    covered = t->end;
    previous = t;
  }
  if (covered != header.data_size) {
    return Invalid("hole in the data section: trailing bytes ", Span(covered, header.data_size),
                   " belong to no tensor");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::span<const std::byte> file) {
  ASSIGN_OR_RETURN(const uint64_t length, ReadHeaderLength(file));
  const std::string_view text(reinterpret_cast<const char*>(file.data()) + kLengthPrefixBytes,
                              length);
  ASSIGN_OR_RETURN(const Json json, ParseJson(text));
  if (!json.is_object()) return Invalid("header is not a JSON object but ", json.type_name());
  // The format requires the byte itself; trailing whitespace is the padding.
  if (text.front() != '{') return Invalid("header does not start with '{'");

  SafetensorsHeader header;
  header.data_offset = kLengthPrefixBytes + length;
  header.data_size = file.size() - header.data_offset;
  header.tensors.reserve(json.size());
  // std::map iteration: tensors come out sorted by name.
  for (const auto& [key, value] : json.get_ref<const Json::object_t&>()) {
    if (key == kMetadataKey) {
      RETURN_IF_ERROR(ParseMetadata(value, &header.metadata));
      continue;
    }
    ASSIGN_OR_RETURN(TensorEntry entry, ParseEntry(key, value, header.data_size));
    header.tensors.push_back(std::move(entry));
  }
  RETURN_IF_ERROR(CheckTiling(header));
  return header;
}

}  // namespace glvq
