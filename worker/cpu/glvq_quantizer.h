// GLVQ behind the engine's Quantizer interface.
#pragma once

#include <memory>

#include "worker/engine/quantizer.h"

namespace glvq::cpu {

// `config.method` must be kGlvq and valid (see engine::ValidateConfig).
std::unique_ptr<engine::Quantizer> MakeGlvqQuantizer(const engine::QuantizerConfig& config);

}  // namespace glvq::cpu
