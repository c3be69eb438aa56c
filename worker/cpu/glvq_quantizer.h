// GLVQ behind the engine's Quantizer interface.
#pragma once

#include <memory>

#include "worker/engine/quantizer.h"

namespace glvq::cpu {

// `config.method` must be kGlvq and valid (see quant::ValidateConfig).
std::unique_ptr<engine::Quantizer> MakeGlvqQuantizer(const quant::QuantizerConfig& config);

}  // namespace glvq::cpu
