// GPTQ / LDLQ baseline (docs/algorithms.md §3.2): columns are quantized one after
// the other on the scalar grids of the "rtn" format, and each column's
// rounding error, scaled by chol(H⁻¹), is fed back into the columns not yet
// quantized. Output in the packed "rtn" format.
#pragma once

#include <memory>

#include "worker/engine/quantizer.h"

namespace glvq::cpu {

// `config.method` must be kGptq and valid (see quant::ValidateConfig), with
// integer bits. Reads rtn_variant (the grid), act_order and threads.
std::unique_ptr<engine::Quantizer> MakeGptqQuantizer(const quant::QuantizerConfig& config);

}  // namespace glvq::cpu
