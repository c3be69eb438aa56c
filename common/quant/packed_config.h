// The model-wide quantization_config (docs/format.md §6) of a packed model
// made with one quantizer configuration: the method's name, bits, dim and
// group size, and the parameters that say how it was made.
#pragma once

#include "common/packed/packed_model.h"
#include "common/quant/config.h"

namespace glvq::quant {

// `lattice_dim` is the tensors' `dim`: 1 for rtn and gptq, D for pvq, the
// window L for trellis, d otherwise. Parameters (format.md §6): "rht";
// glvq and trellis "ldlq", "sdba"; glvq "mu_min", "mu_max", "mu_grid",
// "row_gain"; trellis "window"; rtn and gptq "grid" ("clip_search" or
// "min_max"); gptq "act_order"; pvq "gain_bits" (-1: chosen per rate).
QuantizationConfig PackedQuantizationConfig(const QuantizerConfig& config);

}  // namespace glvq::quant
