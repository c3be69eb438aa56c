// Quantizing a whole model in this process with the engine, without the
// service: for benchmarks and tests that need packed models (`glvq
// quantize` goes through the coordinator and workers instead).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "common/safetensors/reader.h"
#include "common/quant/config.h"

namespace glvq::model {

// The config for the weight `name` of `cols` columns, derived from the
// model-wide one (e.g. a group size at which a fractional SDBA rate is
// exact, or more bits for some tensors as spec.tensors.overrides gives).
using ConfigForWeight = std::function<quant::QuantizerConfig(
    const quant::QuantizerConfig& config, const std::string& name, int64_t cols)>;

// Quantizes every 2-D "*_proj.weight" of the model in `model_dir` with
// `config`, or per weight with `per_weight(config, cols)` if given
// (Hessians from `hessians`, a `glvq calibrate` output, if given), and
// writes the packed model to `out`; its quantization_config is `config`.
absl::Status QuantizeModel(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                           const quant::QuantizerConfig& config,
                           const SafetensorsModel* hessians = nullptr,
                           const ConfigForWeight& per_weight = nullptr);

}  // namespace glvq::model
