// The "e8p" method of the packed format (docs/format.md §4): one 16-bit
// E8P codeword per 8 weights of a row (a ragged row's last codeword covers
// fewer columns), decoded as scale[g] · codeword.
#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/packed/e8p.h"
#include "common/packed/tensor_format.h"

namespace glvq {
namespace {

// The only bit width an e8p group may declare: 16 bits per 8 weights.
constexpr uint8_t kE8pBits = 2;

class E8pFormat final : public TensorFormat {
 public:
  absl::Status ValidateDim(const QuantizedTensor& qt) const override {
    if (qt.dim != e8p::kDim) {
      return InvalidTensor(qt, absl::StrCat("dim must be 8 for method 'e8p', got ", qt.dim));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateLayout(const QuantizedTensor& qt) const override {
    return ValidateBitsAndOffsets(*this, qt, kE8pBits);
  }

  // Every 16-bit word is a codeword index.
  absl::Status ValidateCodes(const QuantizedTensor&, std::span<const uint8_t>) const override {
    return absl::OkStatus();
  }

  absl::Status ValidateSideInfo(const QuantizedTensor& qt) const override {
    RETURN_IF_ERROR(CheckArraySize(qt, "scale", qt.scale.size(), qt.NumGroups()));
    return CheckAllValues(qt, qt.scale, "scale", IsPositiveFinite, "finite and > 0");
  }

  std::vector<ComponentSpec> Components(const QuantizedTensor& qt, int64_t code_bytes,
                                        bool /*with_row_scale*/) const override {
    std::vector<ComponentSpec> specs = StreamComponents(qt, code_bytes);
    specs.push_back({"scale", DType::kF32, {qt.NumGroups()}});
    return specs;
  }

  std::vector<int64_t> GroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                    std::span<const uint8_t> bits) const override {
    std::vector<int64_t> offsets(bits.size() + 1, 0);
    for (size_t g = 0; g < bits.size(); ++g) {
      const auto width = static_cast<int64_t>(packed::ColumnGroupWidth(cols, group_size, g));
      offsets[g + 1] = offsets[g] + rows * E8pVectorsPerRow(width) * e8p::kCodeBytes;
    }
    return offsets;
  }

  // 16 bits per codeword, a ragged row's last one included.
  uint64_t PayloadBits(const QuantizedTensor& qt) const override {
    uint64_t bits = 0;
    for (int64_t g = 0; g < qt.NumGroups(); ++g) {
      bits += static_cast<uint64_t>(qt.rows * E8pVectorsPerRow(qt.GroupWidth(g))) * 8 *
              e8p::kCodeBytes;
    }
    return bits;
  }

  // A ragged row's last codeword decodes 8 values; those beyond the group's
  // width are padding and dropped.
  absl::Status Decode(const QuantizedTensor& qt, std::span<double> out) const override {
    std::vector<uint16_t> codes;
    for (int64_t g = 0; g < qt.NumGroups(); ++g) {
      const int64_t width = qt.GroupWidth(g);
      const int64_t per_row = E8pVectorsPerRow(width);
      const int64_t first_col = g * qt.group_size;
      const double scale = qt.scale[g];
      codes.resize(static_cast<size_t>(qt.rows * per_row));
      RETURN_IF_ERROR(UnpackE8pGroupCodes(qt, g, codes));
      for (int64_t r = 0; r < qt.rows; ++r) {
        for (int64_t v = 0; v < per_row; ++v) {
          const std::array<double, e8p::kDim> c = e8p::Codeword(codes[r * per_row + v]);
          const int64_t c0 = v * e8p::kDim;
          const int64_t k = std::min<int64_t>(e8p::kDim, width - c0);
          for (int64_t i = 0; i < k; ++i) out[r * qt.cols + first_col + c0 + i] = scale * c[i];
        }
      }
    }
    return absl::OkStatus();
  }
};

}  // namespace

const TensorFormat& E8pTensorFormat() {
  static const E8pFormat format;
  return format;
}

int64_t E8pVectorsPerRow(int64_t width) { return (width + e8p::kDim - 1) / e8p::kDim; }

absl::Status PackE8pCodes(std::span<const uint16_t> codes, QuantizedTensor* qt) {
  if (qt->method != kMethodE8p) return InvalidTensor(*qt, "PackE8pCodes needs method 'e8p'");
  RETURN_IF_ERROR(ValidateTensorScalars(*qt));
  RETURN_IF_ERROR(CheckArraySize(*qt, "bits", qt->bits.size(), qt->NumGroups()));
  qt->offsets = E8pTensorFormat().GroupOffsets(qt->rows, qt->cols, qt->group_size, qt->bits);
  RETURN_IF_ERROR(CheckArraySize(*qt, "e8p codes", codes.size(),
                                 qt->offsets.back() / e8p::kCodeBytes));
  qt->codes.resize(static_cast<size_t>(qt->offsets.back()));
  for (size_t i = 0; i < codes.size(); ++i) {
    qt->codes[2 * i] = static_cast<uint8_t>(codes[i] & 0xFF);
    qt->codes[2 * i + 1] = static_cast<uint8_t>(codes[i] >> 8);
  }
  return absl::OkStatus();
}

absl::Status UnpackE8pGroupCodes(const QuantizedTensor& qt, int64_t g,
                                 std::span<uint16_t> out) {
  if (qt.method != kMethodE8p) return InvalidTensor(qt, "UnpackE8pGroupCodes needs method 'e8p'");
  if (g < 0 || g >= qt.NumGroups()) {
    return InvalidTensor(qt, absl::StrCat("group ", g, " out of range"));
  }
  const int64_t count = (qt.offsets[g + 1] - qt.offsets[g]) / e8p::kCodeBytes;
  RETURN_IF_ERROR(CheckArraySize(qt, "output codes", out.size(), count));
  const uint8_t* p = qt.codes.data() + qt.offsets[g];
  for (int64_t i = 0; i < count; ++i) {
    out[i] = static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));
  }
  return absl::OkStatus();
}

}  // namespace glvq
