// The "glvq" method of the packed format (docs/format.md §4): b-bit lattice
// coordinates z per d-vector, decoded as row_scale[r] · scale[g] ·
// F_µ⁻¹(G_g (z − c)) with one generator G_g, µ_g and scale per group and an
// optional per-row gain.
#include <algorithm>
#include <cmath>

#include "common/base/status_macros.h"
#include "common/packed/layout.h"
#include "common/packed/tensor_format.h"

namespace glvq {
namespace {

// F_µ⁻¹ of docs/format.md; expm1/log1p keep precision for small µ · |y|.
double InverseCompand(double y, double mu) {
  if (mu == 0) return y;
  return std::copysign(std::expm1(std::fabs(y) * std::log1p(mu)) / mu, y);
}

class GlvqFormat final : public BitPackedTensorFormat {
 public:
  absl::Status ValidateDim(const QuantizedTensor& qt) const override {
    return CheckDimRange(qt, packed::kMaxLatticeDim);
  }

  absl::Status ValidateSideInfo(const QuantizedTensor& qt) const override {
    const int64_t groups = qt.NumGroups();
    RETURN_IF_ERROR(CheckArraySize(qt, "generators", qt.generators.size(),
                                   groups * qt.dim * qt.dim));
    RETURN_IF_ERROR(CheckArraySize(qt, "mu", qt.mu.size(), groups));
    RETURN_IF_ERROR(CheckArraySize(qt, "scale", qt.scale.size(), groups));
    RETURN_IF_ERROR(CheckAllValues(qt, qt.generators, "generators", IsFiniteValue, "finite"));
    RETURN_IF_ERROR(CheckAllValues(qt, qt.mu, "mu", IsNonNegativeFinite, "finite and >= 0"));
    if (!qt.row_scale.empty()) {
      RETURN_IF_ERROR(CheckArraySize(qt, "row_scale", qt.row_scale.size(), qt.rows));
      RETURN_IF_ERROR(
          CheckAllValues(qt, qt.row_scale, "row_scale", IsPositiveFinite, "finite and > 0"));
    }
    return CheckAllValues(qt, qt.scale, "scale", IsPositiveFinite, "finite and > 0");
  }

  std::vector<ComponentSpec> Components(const QuantizedTensor& qt, int64_t code_bytes,
                                        bool with_row_scale) const override {
    const int64_t groups = qt.NumGroups();
    std::vector<ComponentSpec> specs = StreamComponents(qt, code_bytes);
    specs.push_back({"generators", DType::kF32, {groups, qt.dim, qt.dim}});
    specs.push_back({"mu", DType::kF32, {groups}});
    if (with_row_scale) specs.push_back({kRowScaleComponent, DType::kF32, {qt.rows}});
    specs.push_back({"scale", DType::kF32, {groups}});
    return specs;
  }

 protected:
  void DecodeGroup(const QuantizedTensor& qt, int64_t g, std::span<const uint8_t> codes,
                   std::span<double> out) const override {
    const int64_t width = qt.GroupWidth(g);
    const int64_t d = qt.dim;
    const int64_t first_col = g * qt.group_size;
    const float* gen = qt.generators.data() + g * d * d;
    const double mu = qt.mu[g];
    const double scale = qt.scale[g];
    const double center = std::ldexp(1.0, qt.bits[g] - 1) - 0.5;
    double z[packed::kMaxLatticeDim];
    for (int64_t r = 0; r < qt.rows; ++r) {
      const double gain = qt.row_scale.empty() ? scale : scale * double(qt.row_scale[r]);
      for (int64_t c0 = 0; c0 < width; c0 += d) {
        // A row's last vector may be short: decode it with G's leading k × k block.
        const int64_t k = std::min(d, width - c0);
        for (int64_t j = 0; j < k; ++j) z[j] = codes[r * width + c0 + j] - center;
        for (int64_t i = 0; i < k; ++i) {
          double y = 0;
          for (int64_t j = 0; j < k; ++j) y += static_cast<double>(gen[i * d + j]) * z[j];
          out[r * qt.cols + first_col + c0 + i] = gain * InverseCompand(y, mu);
        }
      }
    }
  }
};

}  // namespace

const TensorFormat& GlvqTensorFormat() {
  static const GlvqFormat format;
  return format;
}

}  // namespace glvq
