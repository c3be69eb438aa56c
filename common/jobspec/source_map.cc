#include "common/jobspec/source_map.h"

#include "absl/strings/str_cat.h"
#include "common/base/string_view.h"

namespace glvq::jobspec {

void SourceMap::Set(const std::string& field_path, SourcePosition position) {
  positions_[field_path] = position;
}

bool SourceMap::Has(std::string_view field_path) const {
  return positions_.find(field_path) != positions_.end();
}

SourcePosition SourceMap::Find(std::string_view field_path) const {
  std::string_view path = field_path;
  while (true) {
    if (auto it = positions_.find(path); it != positions_.end()) return it->second;
    if (path.empty()) return {};
    // Drop the last component: "a.b[2]" -> "a.b" -> "a" -> "".
    const size_t cut = path.find_last_of(".[");
    path = cut == std::string_view::npos ? std::string_view() : path.substr(0, cut);
  }
}

std::string SourceMap::Prefix(std::string_view field_path) const {
  if (file_.empty()) return "";
  const SourcePosition p = Find(field_path);
  if (p.line <= 0) return absl::StrCat(file_, ": ");
  return absl::StrCat(file_, ":", p.line, ":", p.column, ": ");
}

std::string WherePrefix(const SourceMap* source, std::string_view field_path) {
  return source == nullptr ? std::string() : source->Prefix(field_path);
}

}  // namespace glvq::jobspec
