// Static checks of deployment files without their tools: the static YAML
// of a Helm template (no Helm, no cluster), a subset of JSON Schema for a
// chart's values, and the instructions of a Dockerfile.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace glvq::testing {

// What an action inside other text becomes, so that `port: {{ .Values.p }}`
// still parses as a key with a value.
inline constexpr char kTemplateValue[] = "GLVQ_TEMPLATE";

// The static YAML of a Helm template, without rendering it:
//  - a line that holds nothing but Go-template actions ({{- if ... }},
//    {{- end }}, {{- include ... | nindent 4 }}, {{- toYaml . | nindent 8 }})
//    is dropped, so every branch of an `if` and one pass of a `range` stay;
//  - an action inside other text becomes kTemplateValue.
// What the dropped lines would insert (labels, user-supplied maps) is
// missing, so templates must keep the fields under test literal. Returns
// INVALID_ARGUMENT for an action that does not end on its line.
absl::StatusOr<std::string> StripGoTemplate(const std::string& text);

// Every document of a (stripped) YAML stream that is not empty.
std::vector<YAML::Node> LoadDocuments(const std::string& yaml);

// Checks `value` against `schema` for the keywords the chart uses: type,
// required, properties, additionalProperties (false), enum, items, and
// local "$ref": "#/definitions/NAME" into `root`. A YAML scalar has the
// type YAML 1.2's core schema gives it (quoted: string). Returns one
// message per violation, each starting with the value's path.
std::vector<std::string> CheckSchema(const YAML::Node& value, const nlohmann::json& schema,
                                     const nlohmann::json& root, const std::string& path = "");

// A Dockerfile instruction: its keyword (upper case) and its arguments,
// with line continuations joined.
struct DockerInstruction {
  std::string keyword;
  std::string args;
};
std::vector<DockerInstruction> ParseDockerfile(const std::string& text);

}  // namespace glvq::testing
