// The job spec's quantizer section and the engine's QuantizerConfig are one
// schema: these functions map one onto the other field for field, and the
// defaults and validation of common/quant/config.h are the only ones.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "glvq/v1/job.pb.h"
#include "common/quant/config.h"

namespace glvq::jobspec {

// Unset fields take the preset's values (quant::PresetConfig; no preset: the
// engine's defaults). INVALID_ARGUMENT only for enum
// numbers the proto does not define (a newer client); the values
// themselves are checked by quant::ValidateConfig, not here.
absl::StatusOr<quant::QuantizerConfig> ToQuantizerConfig(const v1::QuantizerSpec& spec);

// Every field set, so that the spec no longer depends on defaults.
v1::QuantizerSpec FromQuantizerConfig(const quant::QuantizerConfig& config);

// `spec` with a tensor override's settings (spec.tensors.overrides) in
// place of its own.
v1::QuantizerSpec ApplyOverride(const v1::QuantizerSpec& spec, const v1::TensorOverride& o);

// The quantizer of tensor `name`: spec.quantizer with the first override
// whose pattern matches `name` (GlobMatch-style, fnmatch without flags).
v1::QuantizerSpec QuantizerFor(const v1::JobSpec& spec, std::string_view name);

// The proto and engine spellings of a method ("glvq", "rtn", ...) are the
// same names; these map through them.
absl::StatusOr<quant::Method> ToEngineMethod(v1::Method method);
v1::Method FromEngineMethod(quant::Method method);

}  // namespace glvq::jobspec
