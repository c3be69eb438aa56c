// Where the fields of a parsed job file came from, so that every error about
// a field can start with "FILE:LINE:COLUMN:" like a compiler's.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace glvq::jobspec {

// 1-based line and column; 0 means unknown.
struct SourcePosition {
  int line = 0;
  int column = 0;
};

// Field paths are spelled as in the YAML file: "spec.quantizer.groupSize",
// "spec.tensors.include[1]"; the document itself is "".
class SourceMap {
 public:
  SourceMap() = default;
  explicit SourceMap(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  void Set(const std::string& field_path, SourcePosition position);
  bool Has(std::string_view field_path) const;
  // Position of the field, else of its nearest recorded ancestor, else 0:0.
  SourcePosition Find(std::string_view field_path) const;
  // "FILE:LINE:COL: " (or "FILE: " without a position, "" without a file).
  std::string Prefix(std::string_view field_path) const;

 private:
  std::string file_;
  std::map<std::string, SourcePosition, std::less<>> positions_;
};

// Prefix() through an optional map: "" when there is none.
std::string WherePrefix(const SourceMap* source, std::string_view field_path);

}  // namespace glvq::jobspec
