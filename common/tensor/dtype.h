// Element types of model tensors and exact conversions between them.
//
// F16 and BF16 are converted bit-exactly: widening to F32 is exact for every
// one of the 65 536 bit patterns, narrowing rounds to nearest, ties to even,
// overflows to ±Inf, keeps NaN a NaN (quiet, sign and top payload bits kept)
// and produces subnormals where IEEE 754 does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"

namespace glvq {

// F64 holds calibration statistics (Hessians accumulated in double); model
// weights are F32/F16/BF16. New values go at the end: tables index by value.
enum class DType : uint8_t { kF32, kF16, kBF16, kI8, kU8, kI32, kI64, kF64 };

// Size of one element in bytes.
size_t DTypeSize(DType dtype);
// The safetensors spelling: "F32", "F16", "BF16", "I8", "U8", "I32", "I64",
// "F64".
const char* DTypeName(DType dtype);
// Inverse of DTypeName; nullopt for anything else (including other
// safetensors dtypes such as BOOL or F8_E4M3, which glvq does not handle).
std::optional<DType> ParseDType(std::string_view name);
// True for F32/F16/BF16, the dtypes a quantizer can take as input and a
// packed model can hold as weights. F64 is deliberately not one of them.
bool IsFloatDType(DType dtype);

float HalfToFloat(uint16_t bits);
uint16_t FloatToHalf(float value);
float BFloat16ToFloat(uint16_t bits);
uint16_t FloatToBFloat16(float value);

// Converts `count` elements of `src` (dtype `src_dtype`, little-endian, no
// alignment required) to F32 in `dst`. INVALID_ARGUMENT unless `src_dtype`
// is a float dtype and the spans hold exactly `dst.size()` elements.
absl::Status ConvertToF32(DType src_dtype, std::span<const std::byte> src,
                          std::span<float> dst);
// Converts `dst.size()` elements of a float dtype or F64 to F64 (exact for
// every input). INVALID_ARGUMENT for integer dtypes or mismatched sizes.
absl::Status ConvertToF64(DType src_dtype, std::span<const std::byte> src,
                          std::span<double> dst);
// Converts F32 values to `dst_dtype` (a float dtype) in `dst`, which must be
// exactly src.size() * DTypeSize(dst_dtype) bytes.
absl::Status ConvertFromF32(std::span<const float> src, DType dst_dtype,
                            std::span<std::byte> dst);

}  // namespace glvq
