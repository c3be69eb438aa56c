// Loading a job file's single YAML document without trusting yaml-cpp's
// LoadAll on hostile input.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace glvq::jobspec {

// The one document of `text`. INVALID_ARGUMENT "FILE:LINE:COL: ..." for a
// syntax error, an empty text, or more than one document. `file` names the
// text in messages.
absl::StatusOr<YAML::Node> LoadSingleDocument(std::string_view text, const std::string& file);

}  // namespace glvq::jobspec
