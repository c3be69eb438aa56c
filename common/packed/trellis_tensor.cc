#include "common/packed/trellis_tensor.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/packed/layout.h"
#include "common/packed/tensor_format.h"
#include "common/packed/trellis_code.h"

namespace glvq {
namespace {

int64_t GroupWidth(int64_t cols, int64_t group_size, size_t g) {
  return static_cast<int64_t>(packed::ColumnGroupWidth(cols, group_size, g));
}

}  // namespace

float TrellisSequenceScale(const QuantizedTensor& qt, int64_t row, int64_t group) {
  return qt.row_scale[static_cast<size_t>(row)] * qt.scale[static_cast<size_t>(group)];
}

int TrellisGroupWindow(int64_t window, int64_t width, int bits) {
  return static_cast<int>(std::min<int64_t>(window, width * bits));
}

std::vector<int64_t> TrellisGroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                         std::span<const uint8_t> bits) {
  std::vector<int64_t> offsets(bits.size() + 1, 0);
  for (size_t g = 0; g < bits.size(); ++g) {
    const int64_t width = GroupWidth(cols, group_size, g);
    offsets[g + 1] = offsets[g] + rows * trellis::StreamBytes(width, bits[g]);
  }
  return offsets;
}

absl::Status ValidateTrellisSideInfo(const QuantizedTensor& qt) {
  if (qt.dim > trellis::kMaxL) {
    return InvalidTensor(qt, absl::StrCat("trellis window (dim) ", qt.dim, " exceeds ", trellis::kMaxL));
  }
  for (size_t g = 0; g < qt.bits.size(); ++g) {
    if (qt.bits[g] < trellis::kMinK || qt.bits[g] > trellis::kMaxK) {
      return InvalidTensor(qt, absl::StrCat("group ", g, " has ", int{qt.bits[g]},
                                      " bits per weight, trellis codes 1..4"));
    }
    // The state W_t = (W_{t-1} >> k) | (c_t << (L − k)) needs L ≥ k.
    if (qt.bits[g] > qt.dim) {
      return InvalidTensor(qt, absl::StrCat("group ", g, " has ", int{qt.bits[g]},
                                      " bits per weight, more than the window ", qt.dim));
    }
  }
  if (qt.scale.size() != qt.bits.size()) {
    return InvalidTensor(qt, absl::StrCat("scale has ", qt.scale.size(), " entries, expected ",
                                    qt.bits.size()));
  }
  for (size_t g = 0; g < qt.scale.size(); ++g) {
    if (!std::isfinite(qt.scale[g]) || !(qt.scale[g] > 0)) {
      return InvalidTensor(qt, absl::StrCat("scale[", g, "] is ", qt.scale[g], ", must be finite and > 0"));
    }
  }
  if (qt.row_scale.size() != static_cast<size_t>(qt.rows)) {
    return InvalidTensor(qt, absl::StrCat("row_scale has ", qt.row_scale.size(), " entries, expected ",
                                    qt.rows));
  }
  for (size_t r = 0; r < qt.row_scale.size(); ++r) {
    if (!std::isfinite(qt.row_scale[r]) || qt.row_scale[r] < 0) {
      return InvalidTensor(qt, absl::StrCat("row_scale[", r, "] is ", qt.row_scale[r],
                                      ", must be finite and >= 0"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTrellisCodes(const QuantizedTensor& qt, std::span<const uint8_t> codes) {
  for (size_t g = 0; g < qt.bits.size(); ++g) {
    const int64_t width = GroupWidth(qt.cols, qt.group_size, g);
    const int64_t bytes = trellis::StreamBytes(width, qt.bits[g]);
    const auto used = static_cast<unsigned>((width * qt.bits[g]) % 8);
    if (used == 0) continue;
    for (int64_t r = 0; r < qt.rows; ++r) {
      if ((codes[qt.offsets[g] + (r + 1) * bytes - 1] >> used) != 0) {
        return InvalidTensor(qt, absl::StrCat("group ", g, ", row ", r, " has nonzero padding bits"));
      }
    }
  }
  return absl::OkStatus();
}

void DecodeTrellis(const QuantizedTensor& qt, std::span<float> out) {
  std::vector<float> row;
  for (size_t g = 0; g < qt.bits.size(); ++g) {
    const int64_t width = GroupWidth(qt.cols, qt.group_size, g), first = int64_t(g) * qt.group_size;
    const int k = qt.bits[g];
    const int window = TrellisGroupWindow(qt.dim, width, k);
    const int64_t bytes = trellis::StreamBytes(width, k);
    row.resize(static_cast<size_t>(width));
    for (int64_t r = 0; r < qt.rows; ++r) {
      const uint8_t* stream = qt.codes.data() + qt.offsets[g] + r * bytes;
      trellis::DecodeSequence(stream, width, window, k, TrellisSequenceScale(qt, r, g), row.data());
      std::copy(row.begin(), row.end(), out.begin() + r * qt.cols + first);
    }
  }
}

namespace {

class TrellisFormat final : public TensorFormat {
 public:
  absl::Status ValidateDim(const QuantizedTensor& qt) const override {
    return CheckDimRange(qt, trellis::kMaxL);
  }
  absl::Status ValidateLayout(const QuantizedTensor& qt) const override {
    return ValidateBitsAndOffsets(*this, qt);
  }
  absl::Status ValidateCodes(const QuantizedTensor& qt,
                             std::span<const uint8_t> codes) const override {
    return ValidateTrellisCodes(qt, codes);
  }
  absl::Status ValidateSideInfo(const QuantizedTensor& qt) const override {
    return ValidateTrellisSideInfo(qt);
  }
  std::vector<ComponentSpec> Components(const QuantizedTensor& qt, int64_t code_bytes,
                                        bool /*with_row_scale*/) const override {
    std::vector<ComponentSpec> specs = StreamComponents(qt, code_bytes);
    specs.push_back({kRowScaleComponent, DType::kF32, {qt.rows}});
    specs.push_back({"scale", DType::kF32, {qt.NumGroups()}});
    return specs;
  }
  std::vector<int64_t> GroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                    std::span<const uint8_t> bits) const override {
    return TrellisGroupOffsets(rows, cols, group_size, bits);
  }
  uint64_t PayloadBits(const QuantizedTensor& qt) const override {
    return PerWeightPayloadBits(qt);
  }
  // The trellis values are F32 by definition; widening them is exact.
  absl::Status Decode(const QuantizedTensor& qt, std::span<double> out) const override {
    std::vector<float> dense(out.size());
    DecodeTrellis(qt, dense);
    std::copy(dense.begin(), dense.end(), out.begin());
    return absl::OkStatus();
  }
};

}  // namespace

const TensorFormat& TrellisTensorFormat() {
  static const TrellisFormat format;
  return format;
}

}  // namespace glvq
