// The "rtn" method of the packed format (docs/format.md §4), also what
// gptq writes: b-bit integer codes q, decoded as scale[g, r] · (q − zero[g, r])
// with one scale and zero point per row and group.
#include "common/base/status_macros.h"
#include "common/packed/tensor_format.h"

namespace glvq {
namespace {

class RtnFormat final : public BitPackedTensorFormat {
 public:
  absl::Status ValidateDim(const QuantizedTensor& qt) const override {
    return CheckDimRange(qt, 1);
  }

  absl::Status ValidateSideInfo(const QuantizedTensor& qt) const override {
    const int64_t per_row = qt.NumGroups() * qt.rows;
    RETURN_IF_ERROR(CheckArraySize(qt, "scale", qt.scale.size(), per_row));
    RETURN_IF_ERROR(CheckArraySize(qt, "zero", qt.zero.size(), per_row));
    RETURN_IF_ERROR(CheckAllValues(qt, qt.scale, "scale", IsPositiveFinite, "finite and > 0"));
    return CheckAllValues(qt, qt.zero, "zero", IsFiniteValue, "finite");
  }

  std::vector<ComponentSpec> Components(const QuantizedTensor& qt, int64_t code_bytes,
                                        bool /*with_row_scale*/) const override {
    const int64_t groups = qt.NumGroups();
    std::vector<ComponentSpec> specs = StreamComponents(qt, code_bytes);
    specs.push_back({"scale", DType::kF32, {groups, qt.rows}});
    specs.push_back({"zero", DType::kF32, {groups, qt.rows}});
    return specs;
  }

 protected:
  void DecodeGroup(const QuantizedTensor& qt, int64_t g, std::span<const uint8_t> codes,
                   std::span<double> out) const override {
    const int64_t width = qt.GroupWidth(g);
    const int64_t first_col = g * qt.group_size;
    for (int64_t r = 0; r < qt.rows; ++r) {
      const double scale = qt.scale[g * qt.rows + r];
      const double zero = qt.zero[g * qt.rows + r];
      for (int64_t c = 0; c < width; ++c) {
        out[r * qt.cols + first_col + c] = scale * (codes[r * width + c] - zero);
      }
    }
  }
};

}  // namespace

const TensorFormat& RtnTensorFormat() {
  static const RtnFormat format;
  return format;
}

}  // namespace glvq
