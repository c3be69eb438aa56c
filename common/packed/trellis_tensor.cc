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

int TrellisGroupWindow(int64_t window, int64_t length, int bits) {
  return static_cast<int>(std::min<int64_t>(window, length * bits));
}

int64_t TrellisTileRows(int64_t rows, int64_t tile_rows, int64_t tile) {
  return std::min(tile_rows, rows - tile * tile_rows);
}

int64_t TrellisTileCount(int64_t rows, int64_t tile_rows) {
  return (rows + tile_rows - 1) / tile_rows;
}

int64_t TrellisGroupBytes(int64_t rows, int64_t width, int bits, int64_t tile_rows) {
  const int64_t full = rows / tile_rows, rest = rows % tile_rows;
  return full * trellis::StreamBytes(tile_rows * width, bits) +
         (rest > 0 ? trellis::StreamBytes(rest * width, bits) : 0);
}

std::vector<int64_t> TrellisGroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                         std::span<const uint8_t> bits, int64_t tile_rows) {
  std::vector<int64_t> offsets(bits.size() + 1, 0);
  for (size_t g = 0; g < bits.size(); ++g) {
    const int64_t width = GroupWidth(cols, group_size, g);
    offsets[g + 1] = offsets[g] + TrellisGroupBytes(rows, width, bits[g], tile_rows);
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
    int64_t end = qt.offsets[g];
    for (int64_t j = 0; j < TrellisTileCount(qt.rows, qt.tile_rows); ++j) {
      const int64_t length = TrellisTileRows(qt.rows, qt.tile_rows, j) * width;
      end += trellis::StreamBytes(length, qt.bits[g]);
      const auto used = static_cast<unsigned>((length * qt.bits[g]) % 8);
      if (used != 0 && (codes[end - 1] >> used) != 0) {
        return InvalidTensor(qt, absl::StrCat("group ", g, ", tile ", j, " has nonzero padding bits"));
      }
    }
  }
  return absl::OkStatus();
}

void DecodeTrellis(const QuantizedTensor& qt, std::span<float> out) {
  std::vector<float> tile;
  for (size_t g = 0; g < qt.bits.size(); ++g) {
    const int64_t width = GroupWidth(qt.cols, qt.group_size, g), first = int64_t(g) * qt.group_size;
    const int k = qt.bits[g];
    const uint8_t* stream = qt.codes.data() + qt.offsets[g];
    for (int64_t j = 0; j < TrellisTileCount(qt.rows, qt.tile_rows); ++j) {
      const int64_t n = TrellisTileRows(qt.rows, qt.tile_rows, j), length = n * width;
      tile.resize(static_cast<size_t>(length));
      // Unit scale: 1 · V is exact, so s_rg · V below is the one float
      // product that every decoder computes.
      trellis::DecodeSequence(stream, length, TrellisGroupWindow(qt.dim, length, k), k, 1.0f,
                              tile.data());
      stream += trellis::StreamBytes(length, k);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t r = j * qt.tile_rows + i;
        const float s = TrellisSequenceScale(qt, r, static_cast<int64_t>(g));
        for (int64_t c = 0; c < width; ++c) out[r * qt.cols + first + c] = s * tile[i * width + c];
      }
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
    if (qt.tile_rows < 1 || qt.tile_rows > kMaxTrellisTileRows) {
      return InvalidTensor(qt, absl::StrCat("tile_rows is ", qt.tile_rows, ", expected 1..",
                                            kMaxTrellisTileRows));
    }
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
  std::vector<int64_t> TensorOffsets(const QuantizedTensor& qt) const override {
    return TrellisGroupOffsets(qt.rows, qt.cols, qt.group_size, qt.bits, qt.tile_rows);
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
