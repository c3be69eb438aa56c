#include "tests/unit/static_manifest.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace glvq::testing {
namespace {

bool IsBlank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

// YAML 1.2 core schema resolution of a plain scalar.
const std::regex kNull("^(~|null|Null|NULL|)$");
const std::regex kBool("^(true|True|TRUE|false|False|FALSE)$");
const std::regex kInt("^[-+]?([0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$");
const std::regex kFloat(
    "^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^[-+]?\\.(inf|Inf|INF)$|"
    "^\\.(nan|NaN|NAN)$");

// The JSON type of a YAML node: object, array, string, integer, number,
// boolean or null.
std::string TypeOf(const YAML::Node& node) {
  if (node.IsMap()) return "object";
  if (node.IsSequence()) return "array";
  if (!node.IsDefined() || node.IsNull()) return "null";
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return "string";  // quoted
  if (std::regex_match(s, kNull)) return "null";
  if (std::regex_match(s, kBool)) return "boolean";
  if (std::regex_match(s, kInt)) return "integer";
  if (std::regex_match(s, kFloat)) return "number";
  return "string";
}

bool HasType(const YAML::Node& node, const std::string& type) {
  const std::string actual = TypeOf(node);
  return actual == type || (type == "number" && actual == "integer");
}

// The scalar as the JSON value it resolves to, for `enum`.
nlohmann::json ScalarJson(const YAML::Node& node) {
  const std::string type = TypeOf(node);
  if (type == "boolean") return node.as<bool>();
  if (type == "integer") return node.as<int64_t>();
  if (type == "number") return node.as<double>();
  if (type == "null") return nullptr;
  return node.Scalar();
}

const nlohmann::json& Resolve(const nlohmann::json& schema, const nlohmann::json& root) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!schema.contains("$ref")) return schema;
  const std::string ref = schema["$ref"];
  const std::string prefix = "#/definitions/";
  if (ref.rfind(prefix, 0) != 0 || !root.contains("definitions") ||
      !root["definitions"].contains(ref.substr(prefix.size()))) {
    return kEmpty;
  }
  return root["definitions"][ref.substr(prefix.size())];
}

}  // namespace

absl::StatusOr<std::string> StripGoTemplate(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string kept;  // the line without its actions
    std::string replaced;
    size_t pos = 0;
    while (true) {
      const size_t open = line.find("{{", pos);
      if (open == std::string::npos) break;
      const size_t close = line.find("}}", open + 2);
      if (close == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", number, ": a template action that does not end on its line"));
      }
      kept += line.substr(pos, open - pos);
      replaced += line.substr(pos, open - pos) + kTemplateValue;
      pos = close + 2;
    }
    kept += line.substr(pos);
    replaced += line.substr(pos);
    if (replaced != line && IsBlank(kept)) continue;  // an action-only line
    out += replaced + "\n";
  }
  return out;
}

std::vector<YAML::Node> LoadDocuments(const std::string& yaml) {
  std::vector<YAML::Node> documents;
  for (const YAML::Node& doc : YAML::LoadAll(yaml)) {
    if (doc.IsDefined() && !doc.IsNull()) documents.push_back(doc);
  }
  return documents;
}

std::vector<std::string> CheckSchema(const YAML::Node& value, const nlohmann::json& schema_in,
                                     const nlohmann::json& root, const std::string& path) {
  const nlohmann::json& schema = Resolve(schema_in, root);
  const std::string where = path.empty() ? "(values)" : path;
  std::vector<std::string> errors;
  if (schema.contains("type") && !HasType(value, schema["type"])) {
    errors.push_back(absl::StrCat(where, ": expected ", std::string(schema["type"]), ", got ",
                                  TypeOf(value)));
    return errors;
  }
  if (schema.contains("enum") && value.IsScalar()) {
    const nlohmann::json v = ScalarJson(value);
    const auto& options = schema["enum"];
    if (std::find(options.begin(), options.end(), v) == options.end()) {
      errors.push_back(absl::StrCat(where, ": ", v.dump(), " is not one of ", options.dump()));
    }
  }
  if (value.IsMap()) {
    for (const std::string& key : schema.value("required", std::vector<std::string>())) {
      if (!value[key]) errors.push_back(absl::StrCat(where, ": missing required key '", key, "'"));
    }
    const nlohmann::json properties = schema.value("properties", nlohmann::json::object());
    const bool closed = schema.contains("additionalProperties") &&
                        schema["additionalProperties"].is_boolean() &&
                        !schema["additionalProperties"].get<bool>();
    for (const auto& entry : value) {
      const std::string key = entry.first.as<std::string>();
      const std::string child = path.empty() ? key : absl::StrCat(path, ".", key);
      if (properties.contains(key)) {
        for (std::string& e : CheckSchema(entry.second, properties[key], root, child)) {
          errors.push_back(std::move(e));
        }
      } else if (closed) {
        errors.push_back(absl::StrCat(child, ": not allowed by the schema"));
      }
    }
  }
  if (value.IsSequence() && schema.contains("items")) {
    for (size_t i = 0; i < value.size(); ++i) {
      for (std::string& e :
           CheckSchema(value[i], schema["items"], root, absl::StrCat(where, "[", i, "]"))) {
        errors.push_back(std::move(e));
      }
    }
  }
  return errors;
}

std::vector<DockerInstruction> ParseDockerfile(const std::string& text) {
  std::vector<DockerInstruction> instructions;
  std::istringstream in(text);
  std::string line, pending;
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;  // comments end no instruction
    line = line.substr(first);
    const bool continued = !line.empty() && line.back() == '\\';
    if (!pending.empty()) pending += ' ';
    pending.append(line, 0, continued ? line.size() - 1 : line.size());
    if (continued) continue;
    const size_t space = pending.find_first_of(" \t");
    DockerInstruction instruction;
    instruction.keyword = pending.substr(0, space);
    std::transform(instruction.keyword.begin(), instruction.keyword.end(),
                   instruction.keyword.begin(), [](unsigned char c) { return std::toupper(c); });
    if (const size_t args = pending.find_first_not_of(" \t", space); args != std::string::npos) {
      instruction.args = pending.substr(args);
    }
    instructions.push_back(instruction);
    pending.clear();
  }
  return instructions;
}

}  // namespace glvq::testing
