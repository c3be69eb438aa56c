// YAML onto protobuf messages by reflection, strictly: the proto is the
// schema, so the set of keys, their types and the enum spellings come from
// the descriptors and cannot drift from the messages they fill.
//
// Mapping: a YAML key is a field's JSON name (lowerCamel); a mapping fills a
// message field, a list a repeated field; enum values are spelled as
// YamlEnumName gives. Numbers and booleans must be plain (unquoted)
// scalars; booleans are exactly true/false (no YAML 1.1 yes/no/on/off).
// uint64 fields whose name ends in "_bytes" also take "8Gi"-style
// quantities (byte_quantity.h). Unknown and duplicate keys are errors.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/jobspec/source_map.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "yaml-cpp/yaml.h"

namespace glvq::jobspec {

// Fills `message` (not cleared first) from the mapping `node`, whose field
// path is `path` ("" for the document). Every value's position is recorded
// in `source` under its field path. Errors are INVALID_ARGUMENT and start
// with "FILE:LINE:COL: ".
absl::Status YamlToProto(const YAML::Node& node, const std::string& path,
                         google::protobuf::Message* message, SourceMap* source);

// The YAML spelling of an enum value: the value name without the prefix
// its X_UNSPECIFIED value shares, in lowerCamel: METHOD_GLVQ -> "glvq",
// RTN_VARIANT_CLIP_SEARCH -> "clipSearch". "" for X_UNSPECIFIED itself,
// which YAML cannot name.
std::string YamlEnumName(const google::protobuf::EnumValueDescriptor* value);

// The value spelled `name`, or nullptr.
const google::protobuf::EnumValueDescriptor* FindYamlEnumValue(
    const google::protobuf::EnumDescriptor* type, std::string_view name);

// "a, b, c": the names YAML accepts for the enum.
std::string YamlEnumNames(const google::protobuf::EnumDescriptor* type);

// "FILE:LINE:COL: " for a node of the document `source` describes.
std::string NodePrefix(const SourceMap& source, const YAML::Node& node);

}  // namespace glvq::jobspec
