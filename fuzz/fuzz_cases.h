// The fixed inputs that the fuzz targets pair with their fuzzed bytes, and
// that fuzz_seeds uses to write valid seed inputs. Shared so a seed is
// always valid for the target that reads it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/packed/quantized_tensor.h"
#include "glvq/v1/task.pb.h"
#include "common/quant/config.h"

namespace glvq::fuzz {

// Methods the task-result and packed-tensor targets choose from (by the
// first input byte, modulo the count).
inline constexpr std::array<quant::Method, 5> kMethods = {
    quant::Method::kGlvq, quant::Method::kRtn, quant::Method::kE8p, quant::Method::kPvq,
    quant::Method::kTrellis};

// A small, valid configuration of `method`: 2 bits, group size 32.
quant::QuantizerConfig SmallConfig(quant::Method method);

// The task that task_result_fuzz decodes results against: tensor "w",
// 8 × 64 F32, groups [0, 2) of 32 columns, quantizer SmallConfig(method).
v1::Task SmallTask(quant::Method method);

// task_result_fuzz's input layout after the method byte: a 4-byte
// little-endian header length, the serialized TaskResultHeader, then the
// payload.
std::string JoinResult(uint8_t method_byte, std::string_view header, std::string_view payload);

// The promise both tensor readers keep: a tensor they accept has an
// accounting and decodes, or the decoder refuses it with INVALID_ARGUMENT
// (validation bounds every field but does not decode, so finite scales
// times extreme codes may still overflow F32). Traps otherwise.
void RequireDecodableOrRefused(const QuantizedTensor& qt);

}  // namespace glvq::fuzz
