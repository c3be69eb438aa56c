// Round-to-nearest baseline (docs/algorithms.md §3.1): every (row, column
// group) gets its own scalar grid, min–max or clip-searched, and each weight
// its nearest level. Output in the packed "rtn" format.
#pragma once

#include <memory>

#include "worker/engine/quantizer.h"

namespace glvq::cpu {

// `config.method` must be kRtn and valid (see quant::ValidateConfig), with
// integer bits.
std::unique_ptr<engine::Quantizer> MakeRtnQuantizer(const quant::QuantizerConfig& config);

}  // namespace glvq::cpu
