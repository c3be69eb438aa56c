#include "common/tensor/dtype.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace glvq {
namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr std::array<DTypeEntry, 8> kDTypes = {{
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kI32, "I32", 4},
    {DType::kI64, "I64", 8},
    {DType::kF64, "F64", 8},
}};

const DTypeEntry& Entry(DType dtype) { return kDTypes[static_cast<size_t>(dtype)]; }

uint16_t Load16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

size_t DTypeSize(DType dtype) { return Entry(dtype).size; }
const char* DTypeName(DType dtype) { return Entry(dtype).name; }

std::optional<DType> ParseDType(std::string_view name) {
  for (const DTypeEntry& e : kDTypes) {
    if (name == e.name) return e.dtype;
  }
  return std::nullopt;
}

bool IsFloatDType(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {  // Inf / NaN: keep the payload in the top mantissa bits
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: renormalise
    int e = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t FloatToHalf(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((f >> 16) & 0x8000u);
  const uint32_t abs = f & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // Inf or NaN
    if (abs == 0x7F800000u) return sign | 0x7C00u;
    return static_cast<uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  }
  if (abs >= 0x477FF000u) return sign | 0x7C00u;  // rounds to >= 65520: Inf
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14)
    if (abs < 0x33000000u) return sign;  // < 2^-25 rounds to zero
    // Subnormal half: value = m * 2^-24. Shift the 24-bit significand right.
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24 for exp in [102, 112]
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias the exponent and round the 13 dropped bits to nearest even.
  uint32_t h = ((abs >> 13) - (112u << 10));
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into exp
  return static_cast<uint16_t>(sign | h);
}

float BFloat16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t FloatToBFloat16(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  if ((f & 0x7FFFFFFFu) > 0x7F800000u) {  // NaN: keep it a quiet NaN
    return static_cast<uint16_t>((f >> 16) | 0x0040u);
  }
  const uint32_t rounding = 0x7FFFu + ((f >> 16) & 1u);
  return static_cast<uint16_t>((f + rounding) >> 16);  // overflow → Inf
}

absl::Status ConvertToF32(DType src_dtype, std::span<const std::byte> src,
                          std::span<float> dst) {
  if (!IsFloatDType(src_dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot convert ", DTypeName(src_dtype), " to F32"));
  }
  const size_t esize = DTypeSize(src_dtype);
  if (src.size() != dst.size() * esize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ConvertToF32: ", src.size(), " bytes of ", DTypeName(src_dtype),
        " do not hold ", dst.size(), " elements"));
  }
  const std::byte* p = src.data();
  switch (src_dtype) {
    case DType::kF32:
      if (!dst.empty()) std::memcpy(dst.data(), p, src.size());
      break;
    case DType::kF16:
      for (size_t i = 0; i < dst.size(); ++i) dst[i] = HalfToFloat(Load16(p + 2 * i));
      break;
    case DType::kBF16:
      for (size_t i = 0; i < dst.size(); ++i) dst[i] = BFloat16ToFloat(Load16(p + 2 * i));
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status ConvertToF64(DType src_dtype, std::span<const std::byte> src,
                          std::span<double> dst) {
  if (src_dtype != DType::kF64) {
    // Widening F32/F16/BF16 to double is exact; go through F32.
    std::vector<float> f32(dst.size());
    RETURN_IF_ERROR(ConvertToF32(src_dtype, src, f32));
    std::copy(f32.begin(), f32.end(), dst.begin());
    return absl::OkStatus();
  }
  if (src.size() != dst.size() * sizeof(double)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ConvertToF64: ", src.size(), " bytes of F64 do not hold ", dst.size(), " elements"));
  }
  if (!dst.empty()) std::memcpy(dst.data(), src.data(), src.size());
  return absl::OkStatus();
}

absl::Status ConvertFromF32(std::span<const float> src, DType dst_dtype,
                            std::span<std::byte> dst) {
  if (!IsFloatDType(dst_dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot convert F32 to ", DTypeName(dst_dtype)));
  }
  if (dst.size() != src.size() * DTypeSize(dst_dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ConvertFromF32: destination of ", dst.size(), " bytes does not hold ",
        src.size(), " ", DTypeName(dst_dtype), " elements"));
  }
  std::byte* p = dst.data();
  switch (dst_dtype) {
    case DType::kF32:
      if (!src.empty()) std::memcpy(p, src.data(), dst.size());
      break;
    case DType::kF16:
      for (size_t i = 0; i < src.size(); ++i) {
        const uint16_t h = FloatToHalf(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    case DType::kBF16:
      for (size_t i = 0; i < src.size(); ++i) {
        const uint16_t b = FloatToBFloat16(src[i]);
        std::memcpy(p + 2 * i, &b, 2);
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

}  // namespace glvq
