#include "common/packed/tensor_format.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/packed/layout.h"

namespace glvq {

const TensorFormat* FindTensorFormat(std::string_view method) {
  if (method == kMethodGlvq) return &GlvqTensorFormat();
  if (method == kMethodRtn) return &RtnTensorFormat();
  if (method == kMethodE8p) return &E8pTensorFormat();
  if (method == kMethodPvq) return &PvqTensorFormat();
  if (method == kMethodTrellis) return &TrellisTensorFormat();
  return nullptr;
}

absl::Status InvalidTensor(const QuantizedTensor& qt, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("quantized tensor '", qt.name, "': ", Sv(problem)));
}

absl::Status CheckArraySize(const QuantizedTensor& qt, std::string_view what, size_t actual,
                            int64_t expected) {
  if (actual != static_cast<size_t>(expected)) {
    return InvalidTensor(qt, absl::StrCat(Sv(what), " has ", actual, " entries, expected ",
                                          expected));
  }
  return absl::OkStatus();
}

absl::Status CheckAllValues(const QuantizedTensor& qt, std::span<const float> values,
                            std::string_view what, bool (*ok)(float),
                            std::string_view requirement) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!ok(values[i])) {
      return InvalidTensor(qt, absl::StrCat(Sv(what), "[", i, "] is ", values[i], ", must be ",
                                            Sv(requirement)));
    }
  }
  return absl::OkStatus();
}

bool IsFiniteValue(float v) { return std::isfinite(v); }
bool IsPositiveFinite(float v) { return std::isfinite(v) && v > 0; }
bool IsNonNegativeFinite(float v) { return std::isfinite(v) && v >= 0; }

absl::Status CheckDimRange(const QuantizedTensor& qt, int64_t max_dim) {
  if (qt.dim < 1 || qt.dim > max_dim) {
    return InvalidTensor(qt, absl::StrCat("dim must be in 1..", max_dim, " for method '",
                                          qt.method, "', got ", qt.dim));
  }
  return absl::OkStatus();
}

absl::Status ValidateBitsAndOffsets(const TensorFormat& format, const QuantizedTensor& qt,
                                    int only_bits) {
  const int64_t groups = qt.NumGroups();
  RETURN_IF_ERROR(CheckArraySize(qt, "bits", qt.bits.size(), groups));
  for (int64_t g = 0; g < groups; ++g) {
    if (qt.bits[g] < packed::kMinCodeBits || qt.bits[g] > packed::kMaxCodeBits) {
      return InvalidTensor(qt, absl::StrCat("group ", g, " has ", static_cast<int>(qt.bits[g]),
                                            " bits per code, expected 1..8"));
    }
    if (only_bits > 0 && qt.bits[g] != only_bits) {
      return InvalidTensor(qt, absl::StrCat("group ", g, " has ", static_cast<int>(qt.bits[g]),
                                            " bits per weight, ", qt.method, " has exactly ",
                                            only_bits));
    }
  }
  RETURN_IF_ERROR(CheckArraySize(qt, "offsets", qt.offsets.size(), groups + 1));
  const std::vector<int64_t> expected = format.TensorOffsets(qt);
  for (int64_t g = 0; g <= groups; ++g) {
    if (qt.offsets[g] != expected[g]) {
      return InvalidTensor(qt, absl::StrCat("offsets[", g, "] is ", qt.offsets[g],
                                            ", expected ", expected[g]));
    }
  }
  return absl::OkStatus();
}

absl::Status BitPackedTensorFormat::ValidateLayout(const QuantizedTensor& qt) const {
  return ValidateBitsAndOffsets(*this, qt);
}

// Padding bits are fixed to zero so that a tensor has exactly one encoding.
absl::Status BitPackedTensorFormat::ValidateCodes(const QuantizedTensor& qt,
                                                  std::span<const uint8_t> codes) const {
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    const uint64_t code_bits = static_cast<uint64_t>(qt.rows * qt.GroupWidth(g)) * qt.bits[g];
    const unsigned used = static_cast<unsigned>(code_bits % 8);
    if (used == 0) continue;
    const uint8_t last = codes[qt.offsets[g + 1] - 1];
    if ((last >> used) != 0) {
      return InvalidTensor(qt, absl::StrCat("group ", g, " has nonzero padding bits"));
    }
  }
  return absl::OkStatus();
}

std::vector<int64_t> BitPackedTensorFormat::GroupOffsets(int64_t rows, int64_t cols,
                                                         int64_t group_size,
                                                         std::span<const uint8_t> bits) const {
  std::vector<int64_t> offsets(bits.size() + 1, 0);
  for (size_t g = 0; g < bits.size(); ++g) {
    const uint64_t width = packed::ColumnGroupWidth(cols, group_size, g);
    offsets[g + 1] = offsets[g] + static_cast<int64_t>(packed::GroupCodeBytes(rows, width, bits[g]));
  }
  return offsets;
}

uint64_t BitPackedTensorFormat::PayloadBits(const QuantizedTensor& qt) const {
  return PerWeightPayloadBits(qt);
}

std::vector<ComponentSpec> StreamComponents(const QuantizedTensor& qt, int64_t code_bytes) {
  const int64_t groups = qt.NumGroups();
  return {{"bits", DType::kU8, {groups}},
          {"codes", DType::kU8, {code_bytes}},
          {"offsets", DType::kI64, {groups + 1}}};
}

uint64_t PerWeightPayloadBits(const QuantizedTensor& qt) {
  uint64_t bits = 0;
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    bits += static_cast<uint64_t>(qt.rows * qt.GroupWidth(g)) * qt.bits[g];
  }
  return bits;
}

absl::Status BitPackedTensorFormat::Decode(const QuantizedTensor& qt,
                                           std::span<double> out) const {
  std::vector<uint8_t> codes;
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    codes.resize(static_cast<size_t>(qt.rows * qt.GroupWidth(g)));
    RETURN_IF_ERROR(UnpackGroupCodes(qt, g, codes));
    DecodeGroup(qt, g, codes, out);
  }
  return absl::OkStatus();
}

}  // namespace glvq
