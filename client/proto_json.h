// glvq's messages as JSON, in the spellings of the job spec: what
// `--output json` prints. Protobuf's own JSON mapping spells enums as
// METHOD_GLVQ and 64-bit integers as strings; here
//   - keys are the fields' JSON names (lowerCamel, as in the YAML);
//   - enum values are their YAML spellings (jobspec::YamlEnumName: "glvq",
//     "clipSearch", "succeeded"), null for an unspecified value;
//   - every integer is a JSON number (64-bit ones included);
//   - Timestamp and Duration are RFC 3339 text and "1.5s", as in proto JSON;
//   - scalars are printed even at their default, message fields when set,
//     a oneof's set member only.
#pragma once

#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {

nlohmann::ordered_json ProtoJson(const google::protobuf::Message& message);

}  // namespace glvq::cli
