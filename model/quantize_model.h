// Quantizing a whole model in this process with the engine, without the
// service: for benchmarks and tests that need packed models (`glvq
// quantize` goes through the coordinator and workers instead).
#pragma once

#include <filesystem>

#include "absl/status/status.h"
#include "common/safetensors/reader.h"
#include "worker/engine/config.h"

namespace glvq::model {

// Quantizes every 2-D "*_proj.weight" of the model in `model_dir` with
// `config` (Hessians from `hessians`, a `glvq calibrate` output, if given)
// and writes the packed model to `out`.
absl::Status QuantizeModel(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                           const engine::QuantizerConfig& config,
                           const SafetensorsModel* hessians = nullptr);


}  // namespace glvq::model
