// The CUDA engine's RTN, GPTQ and E8P quantizers (scalar_runner.h), made by
// MakeCudaQuantizer (cuda_quantizer.h), which validates the config and the
// devices first.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "worker/engine/quantizer.h"

namespace glvq::cuda {

// `config.method` is kRtn, kGptq or kE8p and valid; `devices` are distinct
// visible ordinals; max_tiles > 0 caps the row tiles of a pass.
std::unique_ptr<engine::Quantizer> NewCudaScalarQuantizer(const quant::QuantizerConfig& config,
                                                          std::vector<int> devices,
                                                          int64_t max_tiles);

}  // namespace glvq::cuda
