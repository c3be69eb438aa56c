// Making packed models in tests: quantizes the linear layers of a model
// with the engine (what `glvq quantize` will do, without the service).
#pragma once

#include <filesystem>

#include "absl/status/status.h"
#include "common/safetensors/reader.h"
#include "worker/engine/config.h"

namespace glvq::testing {

// Quantizes every 2-D "*_proj.weight" of the model in `model_dir` with
// `config` (Hessians from `hessians`, a `glvq calibrate` output, if given)
// and writes the packed model to `out`.
absl::Status QuantizeModel(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                           const engine::QuantizerConfig& config,
                           const SafetensorsModel* hessians = nullptr);

// 6-bit RTN in groups of 32: fast, and on stories260K far enough from the
// original that KL and top-1 agreement are visibly not 0 and 1 (KL 0.31,
// top-1 0.66: the tiny model is very sensitive; 3 bits give KL 4.4).
engine::QuantizerConfig FastTestConfig();

}  // namespace glvq::testing
