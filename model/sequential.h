// Quantizing a Llama model layer by layer on the inputs that the
// already-quantized layers produce (GPTQ's sequential order), instead of
// on Hessians of the original model's activations.
//
// The calibration text runs through the model once. Within each decoder
// layer the four linear-layer inputs are handled in forward order: the
// Hessian of q/k/v's input is taken from the residual stream the quantized
// earlier layers left, q/k/v are quantized, the attention output is
// recomputed with them for o_proj's Hessian, and so on through gate/up and
// down_proj; the stream then advances through the quantized layer. Each
// weight is thus fitted to the inputs it will actually see, so the errors
// of earlier layers are compensated instead of compounded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "absl/status/status.h"
#include "common/quant/config.h"
#include "model/tokens.h"

namespace glvq::model {

struct SequentialOptions {
  int64_t batch_tokens = 4096;  // tokens per forward batch (see EvalOptions)
};

// Quantizes every linear weight of the decoder layers of the Llama
// checkpoint in `model_dir` with `config` (threads: the weights that share
// an input run side by side, one engine thread each), using `calibration`
// as described above, and writes the packed model to `out` (which must not
// exist; its quantization_config is `config`). Memory: the residual stream
// and one layer's activations for every calibration token, in F32.
// Errors: the model's and the engine's; INVALID_ARGUMENT for an empty
// calibration set or a token outside the vocabulary.
absl::Status QuantizeModelSequential(const std::filesystem::path& model_dir,
                                     const std::filesystem::path& out,
                                     const quant::QuantizerConfig& config,
                                     std::span<const TokenSequence> calibration,
                                     const SequentialOptions& options = {});

}  // namespace glvq::model
