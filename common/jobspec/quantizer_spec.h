// The job spec's quantizer section and the engine's QuantizerConfig are one
// schema: these functions map one onto the other field for field, and the
// engine's defaults and validation (worker/engine/config.h) are the only
// ones.
#pragma once

#include "absl/status/statusor.h"
#include "glvq/v1/job.pb.h"
#include "worker/engine/config.h"

namespace glvq::jobspec {

// Unset fields take the preset's values (engine::PresetConfig; no preset: the
// engine's defaults). INVALID_ARGUMENT only for enum
// numbers the proto does not define (a newer client); the values
// themselves are checked by engine::ValidateConfig, not here.
absl::StatusOr<engine::QuantizerConfig> ToQuantizerConfig(const v1::QuantizerSpec& spec);

// Every field set, so that the spec no longer depends on defaults.
v1::QuantizerSpec FromQuantizerConfig(const engine::QuantizerConfig& config);

// The proto and engine spellings of a method ("glvq", "rtn", ...) are the
// same names; these map through them.
absl::StatusOr<engine::Method> ToEngineMethod(v1::Method method);
v1::Method FromEngineMethod(engine::Method method);

}  // namespace glvq::jobspec
