#include "common/base/string_view.h"
#include "common/packed/quantized_tensor.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/packed/bitpack.h"
#include "common/packed/e8p.h"
#include "common/packed/hadamard.h"
#include "common/packed/pvq.h"
#include "common/packed/pvq_tensor.h"
#include "common/packed/trellis_code.h"
#include "common/packed/trellis_tensor.h"

namespace glvq {
namespace {

static_assert(std::endian::native == std::endian::little,
              "component tensors are little-endian and copied as raw bytes");

// Row and column counts fit the uint32 fields of packed::GroupDesc, and
// rows * cols * 8 bits cannot overflow uint64.
constexpr int64_t kMaxExtent = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxWeights = int64_t{1} << 48;


absl::Status Invalid(const QuantizedTensor& qt, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("quantized tensor '", qt.name, "': ", problem));
}

bool IsKnownMethod(std::string_view method) {
  return method == kMethodGlvq || method == kMethodRtn || method == kMethodE8p ||
         method == kMethodPvq || method == kMethodTrellis;
}

// glvq and rtn pack b-bit codes LSB-first; e8p stores whole 16-bit indices,
// pvq records of index and gain bits (pvq_tensor.h), trellis one
// byte-aligned stream per row and group (trellis_tensor.h).
bool IsBitPacked(std::string_view method) {
  return method != kMethodE8p && method != kMethodPvq && method != kMethodTrellis;
}

// The only bit width an e8p group may declare: 16 bits per 8 weights.
constexpr uint8_t kE8pBits = 2;

absl::Status CheckExtent(const QuantizedTensor& qt, absl::string_view what,
                         int64_t value) {
  if (value < 1 || value > kMaxExtent) {
    return Invalid(qt, absl::StrCat(what, " must be in 1..", kMaxExtent, ", got ", value));
  }
  return absl::OkStatus();
}

// Everything that does not depend on the arrays; after this, NumGroups()
// and GroupWidth() are meaningful.
absl::Status ValidateScalars(const QuantizedTensor& qt) {
  if (qt.name.empty()) return Invalid(qt, "empty name");
  if (!IsKnownMethod(qt.method)) {
    return Invalid(qt, absl::StrCat("unknown method '", qt.method,
                                    "' (expected 'glvq', 'rtn', 'e8p', 'pvq' or 'trellis')"));
  }
  if (!IsFloatDType(qt.source_dtype)) {
    return Invalid(qt, absl::StrCat("source dtype ", Sv(DTypeName(qt.source_dtype)),
                                    " is not a float dtype"));
  }
  RETURN_IF_ERROR(CheckExtent(qt, "rows", qt.rows));
  RETURN_IF_ERROR(CheckExtent(qt, "cols", qt.cols));
  RETURN_IF_ERROR(CheckExtent(qt, "group_size", qt.group_size));
  if (qt.rows * qt.cols > kMaxWeights) {
    return Invalid(qt, absl::StrCat("rows * cols exceeds ", kMaxWeights));
  }
  const int64_t max_dim = qt.method == kMethodRtn       ? 1
                          : qt.method == kMethodPvq     ? pvq::kMaxDim
                          : qt.method == kMethodTrellis ? trellis::kMaxL
                                                        : packed::kMaxLatticeDim;
  if (qt.method == kMethodE8p && qt.dim != e8p::kDim) {
    return Invalid(qt, absl::StrCat("dim must be 8 for method 'e8p', got ", qt.dim));
  }
  if (qt.dim < 1 || qt.dim > max_dim) {
    return Invalid(qt, absl::StrCat("dim must be in 1..", max_dim, " for method '",
                                    qt.method, "', got ", qt.dim));
  }
  if (qt.quality.has_value()) {
    const TensorQuality& q = *qt.quality;
    if (!std::isfinite(q.nmse) || !std::isfinite(q.sqnr_db) ||
        !std::isfinite(q.proxy_loss) || !std::isfinite(q.top_error) || q.top_error < 0) {
      return Invalid(qt, "quality figures must be finite");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckArraySize(const QuantizedTensor& qt, absl::string_view what,
                            size_t actual, int64_t expected) {
  if (actual != static_cast<size_t>(expected)) {
    return Invalid(qt, absl::StrCat(what, " has ", actual, " entries, expected ", expected));
  }
  return absl::OkStatus();
}

absl::Status ValidateBitsAndOffsets(const QuantizedTensor& qt) {
  if (qt.method == kMethodPvq) return ValidatePvqLayout(qt);
  const int64_t groups = qt.NumGroups();
  RETURN_IF_ERROR(CheckArraySize(qt, "bits", qt.bits.size(), groups));
  for (int64_t g = 0; g < groups; ++g) {
    if (qt.bits[g] < packed::kMinCodeBits || qt.bits[g] > packed::kMaxCodeBits) {
      return Invalid(qt, absl::StrCat("group ", g, " has ", static_cast<int>(qt.bits[g]),
                                      " bits per code, expected 1..8"));
    }
    if (qt.method == kMethodE8p && qt.bits[g] != kE8pBits) {
      return Invalid(qt, absl::StrCat("group ", g, " has ", static_cast<int>(qt.bits[g]),
                                      " bits per weight, e8p has exactly 2"));
    }
  }
  RETURN_IF_ERROR(CheckArraySize(qt, "offsets", qt.offsets.size(), groups + 1));
  const std::vector<int64_t> expected =
      ComputeGroupOffsets(qt.method, qt.rows, qt.cols, qt.group_size, qt.bits);
  for (int64_t g = 0; g <= groups; ++g) {
    if (qt.offsets[g] != expected[g]) {
      return Invalid(qt, absl::StrCat("offsets[", g, "] is ", qt.offsets[g],
                                      ", expected ", expected[g]));
    }
  }
  return absl::OkStatus();
}

// Padding bits are fixed to zero so that a tensor has exactly one encoding.
absl::Status ValidateCodes(const QuantizedTensor& qt, std::span<const uint8_t> codes) {
  const int64_t groups = qt.NumGroups();
  if (codes.size() != static_cast<uint64_t>(qt.offsets[groups])) {
    return Invalid(qt, absl::StrCat("codes has ", codes.size(), " bytes, offsets say ",
                                    qt.offsets[groups]));
  }
  if (qt.method == kMethodPvq) return ValidatePvqCodes(qt, codes);
  if (qt.method == kMethodTrellis) return ValidateTrellisCodes(qt, codes);
  if (!IsBitPacked(qt.method)) return absl::OkStatus();  // every uint16 is an index
  for (int64_t g = 0; g < groups; ++g) {
    const uint64_t code_bits =
        static_cast<uint64_t>(qt.rows * qt.GroupWidth(g)) * qt.bits[g];
    const unsigned used = static_cast<unsigned>(code_bits % 8);
    if (used == 0) continue;
    const uint8_t last = codes[qt.offsets[g + 1] - 1];
    if ((last >> used) != 0) {
      return Invalid(qt, absl::StrCat("group ", g, " has nonzero padding bits"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckAll(const QuantizedTensor& qt, std::span<const float> values,
                      absl::string_view what, bool (*ok)(float),
                      absl::string_view requirement) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!ok(values[i])) {
      return Invalid(qt, absl::StrCat(what, "[", i, "] is ", values[i], ", must be ",
                                      requirement));
    }
  }
  return absl::OkStatus();
}

bool IsFinite(float v) { return std::isfinite(v); }
bool IsPositiveFinite(float v) { return std::isfinite(v) && v > 0; }
bool IsNonNegativeFinite(float v) { return std::isfinite(v) && v >= 0; }

absl::Status ValidateGlvqSideInfo(const QuantizedTensor& qt) {
  const int64_t groups = qt.NumGroups();
  RETURN_IF_ERROR(CheckArraySize(qt, "generators", qt.generators.size(),
                                 groups * qt.dim * qt.dim));
  RETURN_IF_ERROR(CheckArraySize(qt, "mu", qt.mu.size(), groups));
  RETURN_IF_ERROR(CheckArraySize(qt, "scale", qt.scale.size(), groups));
  RETURN_IF_ERROR(CheckArraySize(qt, "zero", qt.zero.size(), 0));
  RETURN_IF_ERROR(CheckAll(qt, qt.generators, "generators", IsFinite, "finite"));
  RETURN_IF_ERROR(CheckAll(qt, qt.mu, "mu", IsNonNegativeFinite, "finite and >= 0"));
  if (!qt.row_scale.empty()) {
    RETURN_IF_ERROR(CheckArraySize(qt, "row_scale", qt.row_scale.size(), qt.rows));
    RETURN_IF_ERROR(CheckAll(qt, qt.row_scale, "row_scale", IsPositiveFinite, "finite and > 0"));
  }
  return CheckAll(qt, qt.scale, "scale", IsPositiveFinite, "finite and > 0");
}

absl::Status ValidateE8pSideInfo(const QuantizedTensor& qt) {
  RETURN_IF_ERROR(CheckArraySize(qt, "generators", qt.generators.size(), 0));
  RETURN_IF_ERROR(CheckArraySize(qt, "mu", qt.mu.size(), 0));
  RETURN_IF_ERROR(CheckArraySize(qt, "scale", qt.scale.size(), qt.NumGroups()));
  RETURN_IF_ERROR(CheckArraySize(qt, "zero", qt.zero.size(), 0));
  return CheckAll(qt, qt.scale, "scale", IsPositiveFinite, "finite and > 0");
}

absl::Status ValidateRtnSideInfo(const QuantizedTensor& qt) {
  const int64_t per_row = qt.NumGroups() * qt.rows;
  RETURN_IF_ERROR(CheckArraySize(qt, "generators", qt.generators.size(), 0));
  RETURN_IF_ERROR(CheckArraySize(qt, "mu", qt.mu.size(), 0));
  RETURN_IF_ERROR(CheckArraySize(qt, "scale", qt.scale.size(), per_row));
  RETURN_IF_ERROR(CheckArraySize(qt, "zero", qt.zero.size(), per_row));
  RETURN_IF_ERROR(CheckAll(qt, qt.scale, "scale", IsPositiveFinite, "finite and > 0"));
  return CheckAll(qt, qt.zero, "zero", IsFinite, "finite");
}

absl::Status ValidateSideInfo(const QuantizedTensor& qt) {
  if (qt.rht_seed.size() != 0 && qt.rht_seed.size() != 2) {
    return Invalid(qt, absl::StrCat("rht_seed has ", qt.rht_seed.size(),
                                    " entries, expected 0 or 2"));
  }
  if (qt.method != kMethodGlvq && qt.method != kMethodTrellis) {
    RETURN_IF_ERROR(CheckArraySize(qt, "row_scale", qt.row_scale.size(), 0));
  }
  if (qt.method == kMethodPvq) return absl::OkStatus();  // ValidatePvqLayout did it
  RETURN_IF_ERROR(CheckArraySize(qt, "pulses", qt.pulses.size(), 0));
  RETURN_IF_ERROR(CheckArraySize(qt, "gains", qt.gains.size(), 0));
  RETURN_IF_ERROR(CheckArraySize(qt, "norms", qt.norms.size(), 0));
  if (qt.method == kMethodTrellis) return ValidateTrellisSideInfo(qt);
  if (qt.method == kMethodGlvq) return ValidateGlvqSideInfo(qt);
  if (qt.method == kMethodE8p) return ValidateE8pSideInfo(qt);
  return ValidateRtnSideInfo(qt);
}

// F_mu^-1 of docs/format.md; expm1/log1p keep precision for small mu * |y|.
double InverseCompand(double y, double mu) {
  if (mu == 0) return y;
  return std::copysign(std::expm1(std::fabs(y) * std::log1p(mu)) / mu, y);
}

// The decoders write each weight once, converted to T: float rounds the
// double result (the format's single rounding); double keeps it for the
// inverse RHT, which rounds after the transform instead.
template <typename T>
void DecodeGlvqGroup(const QuantizedTensor& qt, int64_t g,
                     std::span<const uint8_t> codes, std::span<T> out) {
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
      // A row's last vector may be short: decode it with G's leading k x k block.
      const int64_t k = std::min(d, width - c0);
      for (int64_t j = 0; j < k; ++j) z[j] = codes[r * width + c0 + j] - center;
      for (int64_t i = 0; i < k; ++i) {
        double y = 0;
        for (int64_t j = 0; j < k; ++j) y += static_cast<double>(gen[i * d + j]) * z[j];
        out[r * qt.cols + first_col + c0 + i] = static_cast<T>(gain * InverseCompand(y, mu));
      }
    }
  }
}

template <typename T>
void DecodeRtnGroup(const QuantizedTensor& qt, int64_t g,
                    std::span<const uint8_t> codes, std::span<T> out) {
  const int64_t width = qt.GroupWidth(g);
  const int64_t first_col = g * qt.group_size;
  for (int64_t r = 0; r < qt.rows; ++r) {
    const double scale = qt.scale[g * qt.rows + r];
    const double zero = qt.zero[g * qt.rows + r];
    for (int64_t c = 0; c < width; ++c) {
      out[r * qt.cols + first_col + c] = static_cast<T>(scale * (codes[r * width + c] - zero));
    }
  }
}

// A ragged row's last codeword decodes 8 values; those beyond the group's
// width are padding and dropped.
template <typename T>
void DecodeE8pGroup(const QuantizedTensor& qt, int64_t g, std::span<const uint16_t> codes,
                    std::span<T> out) {
  const int64_t width = qt.GroupWidth(g);
  const int64_t per_row = E8pVectorsPerRow(width);
  const int64_t first_col = g * qt.group_size;
  const double scale = qt.scale[g];
  for (int64_t r = 0; r < qt.rows; ++r) {
    for (int64_t v = 0; v < per_row; ++v) {
      const std::array<double, e8p::kDim> c = e8p::Codeword(codes[r * per_row + v]);
      const int64_t c0 = v * e8p::kDim;
      const int64_t k = std::min<int64_t>(e8p::kDim, width - c0);
      for (int64_t i = 0; i < k; ++i) {
        out[r * qt.cols + first_col + c0 + i] = static_cast<T>(scale * c[i]);
      }
    }
  }
}

template <typename T>
absl::Status DecodeGroups(const QuantizedTensor& qt, std::span<T> out) {
  if (qt.method == kMethodPvq) {
    if constexpr (std::is_same_v<T, double>) return DecodePvq(qt, out);
    std::vector<double> dense(out.size());
    RETURN_IF_ERROR(DecodePvq(qt, dense));
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(dense[i]);
    return absl::OkStatus();
  }
  if (qt.method == kMethodTrellis) {
    std::vector<float> dense(out.size());
    DecodeTrellis(qt, dense);
    std::copy(dense.begin(), dense.end(), out.begin());
    return absl::OkStatus();
  }
  std::vector<uint8_t> codes;
  std::vector<uint16_t> indices;
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    if (qt.method == kMethodE8p) {
      indices.resize(static_cast<size_t>(qt.rows * E8pVectorsPerRow(qt.GroupWidth(g))));
      RETURN_IF_ERROR(UnpackE8pGroupCodes(qt, g, indices));
      DecodeE8pGroup<T>(qt, g, indices, out);
      continue;
    }
    codes.resize(static_cast<size_t>(qt.rows * qt.GroupWidth(g)));
    RETURN_IF_ERROR(UnpackGroupCodes(qt, g, codes));
    if (qt.method == kMethodGlvq) {
      DecodeGlvqGroup<T>(qt, g, codes, out);
    } else {
      DecodeRtnGroup<T>(qt, g, codes, out);
    }
  }
  return absl::OkStatus();
}

// Decodes W̃ in double, undoes the RHT, and rounds once.
absl::Status DecodeWithRht(const QuantizedTensor& qt, std::span<float> out) {
  std::vector<double> dense(out.size());
  RETURN_IF_ERROR(DecodeGroups<double>(qt, dense));
  const RhtSeeds seeds{static_cast<uint64_t>(qt.rht_seed[0]),
                       static_cast<uint64_t>(qt.rht_seed[1])};
  RhtInverse(dense, qt.rows, qt.cols, seeds);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(dense[i]);
  return absl::OkStatus();
}

template <typename T>
std::span<const std::byte> Bytes(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

template <typename T>
std::vector<T> CopyElements(const TensorView& view) {
  std::vector<T> out(view.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), view.data.data(), view.data.size());
  return out;
}

struct ComponentSpec {
  std::string_view name;
  DType dtype;
  std::vector<int64_t> shape;  // codes: its length comes from offsets
};

std::vector<ComponentSpec> ComponentSpecs(const QuantizedTensor& qt, int64_t code_bytes,
                                          bool with_rht_seed, bool with_row_scale) {
  const int64_t groups = qt.NumGroups();
  std::vector<ComponentSpec> specs;
  if (qt.method != kMethodPvq) specs.push_back({"bits", DType::kU8, {groups}});
  specs.push_back({"codes", DType::kU8, {code_bytes}});
  specs.push_back({"offsets", DType::kI64, {groups + 1}});
  if (qt.method == kMethodPvq) {
    // gains: [S, levels], any levels here; ValidatePvqLayout checks them.
    const int64_t gain_rows = PvqGainRows(qt);
    specs.push_back({"gains", DType::kF32,
                     {gain_rows, static_cast<int64_t>(qt.gains.size()) / gain_rows}});
    specs.push_back({"norms", DType::kF32, {qt.rows}});
    specs.push_back({"pulses", DType::kI32, {groups, 2}});
  } else if (qt.method == kMethodGlvq) {
    specs.push_back({"generators", DType::kF32, {groups, qt.dim, qt.dim}});
    specs.push_back({"mu", DType::kF32, {groups}});
    if (with_row_scale) specs.push_back({kRowScaleComponent, DType::kF32, {qt.rows}});
    specs.push_back({"scale", DType::kF32, {groups}});
  } else if (qt.method == kMethodE8p) {
    specs.push_back({"scale", DType::kF32, {groups}});
  } else if (qt.method == kMethodTrellis) {
    specs.push_back({kRowScaleComponent, DType::kF32, {qt.rows}});
    specs.push_back({"scale", DType::kF32, {groups}});
  } else {
    specs.push_back({"scale", DType::kF32, {groups, qt.rows}});
    specs.push_back({"zero", DType::kF32, {groups, qt.rows}});
  }
  if (with_rht_seed) specs.push_back({kRhtSeedComponent, DType::kI64, {2}});
  return specs;
}

absl::Status CheckComponentSet(
    const QuantizedTensor& meta,
    const std::map<std::string, TensorView, std::less<>>& components) {
  const std::vector<std::string> expected =
      ComponentNames(meta.method, components.contains(kRhtSeedComponent),
                     components.contains(kRowScaleComponent));
  std::vector<std::string> actual;
  for (const auto& [name, view] : components) actual.push_back(name);
  if (actual != expected) {
    return Invalid(meta, absl::StrCat("components are {", absl::StrJoin(actual, ", "),
                                      "}, expected {", absl::StrJoin(expected, ", "),
                                      "} for method '", meta.method, "'"));
  }
  return absl::OkStatus();
}

absl::Status CheckComponentView(const QuantizedTensor& meta, const ComponentSpec& spec,
                                const TensorView& view) {
  // codes may have any length here, and pvq's gains any number of levels;
  // validation compares them with offsets and the gain bits.
  const bool is_codes = spec.name == "codes", is_gains = spec.name == "gains";
  const bool ok = is_codes   ? view.shape.size() == 1
                  : is_gains ? view.shape.size() == 2 && view.shape[0] == spec.shape[0]
                             : view.shape == spec.shape;
  if (view.dtype != spec.dtype || !ok) {
    return Invalid(meta, absl::StrCat(
        "component '", Sv(spec.name), "' is ", Sv(DTypeName(view.dtype)), " ",
        ShapeToString(view.shape), ", expected ", Sv(DTypeName(spec.dtype)), " ",
        is_codes   ? "[bytes]"
        : is_gains ? absl::StrCat("[", spec.shape[0], ", levels]")
                   : ShapeToString(spec.shape)));
  }
  return absl::OkStatus();
}

void CopyComponent(std::string_view name, const TensorView& view, bool load_codes,
                   QuantizedTensor* qt) {
  if (name == "bits") qt->bits = CopyElements<uint8_t>(view);
  if (name == "codes" && load_codes) qt->codes = CopyElements<uint8_t>(view);
  if (name == "offsets") qt->offsets = CopyElements<int64_t>(view);
  if (name == "generators") qt->generators = CopyElements<float>(view);
  if (name == "mu") qt->mu = CopyElements<float>(view);
  if (name == "scale") qt->scale = CopyElements<float>(view);
  if (name == "zero") qt->zero = CopyElements<float>(view);
  if (name == "pulses") qt->pulses = CopyElements<int32_t>(view);
  if (name == "gains") qt->gains = CopyElements<float>(view);
  if (name == "norms") qt->norms = CopyElements<float>(view);
  if (name == kRowScaleComponent) qt->row_scale = CopyElements<float>(view);
  if (name == kRhtSeedComponent) qt->rht_seed = CopyElements<int64_t>(view);
}

}  // namespace

int64_t QuantizedTensor::NumGroups() const {
  if (cols <= 0 || group_size <= 0) return 0;
  return static_cast<int64_t>(packed::NumColumnGroups(cols, group_size));
}

int64_t QuantizedTensor::GroupWidth(int64_t g) const {
  return static_cast<int64_t>(packed::ColumnGroupWidth(cols, group_size, g));
}

absl::Status ValidateQuantizedTensor(const QuantizedTensor& qt) {
  return ValidateQuantizedTensor(qt, qt.codes);
}

absl::Status ValidateQuantizedTensor(const QuantizedTensor& qt,
                                     std::span<const uint8_t> codes) {
  RETURN_IF_ERROR(ValidateScalars(qt));
  RETURN_IF_ERROR(ValidateBitsAndOffsets(qt));
  RETURN_IF_ERROR(ValidateCodes(qt, codes));
  return ValidateSideInfo(qt);
}

std::vector<int64_t> ComputeGroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                         std::span<const uint8_t> bits) {
  return ComputeGroupOffsets(kMethodGlvq, rows, cols, group_size, bits);
}

std::vector<int64_t> ComputeGroupOffsets(std::string_view method, int64_t rows, int64_t cols,
                                         int64_t group_size, std::span<const uint8_t> bits) {
  if (method == kMethodTrellis) return TrellisGroupOffsets(rows, cols, group_size, bits);
  std::vector<int64_t> offsets(bits.size() + 1, 0);
  for (size_t g = 0; g < bits.size(); ++g) {
    const uint64_t width = packed::ColumnGroupWidth(cols, group_size, g);
    const uint64_t bytes =
        IsBitPacked(method)
            ? packed::GroupCodeBytes(rows, width, bits[g])
            : static_cast<uint64_t>(rows * E8pVectorsPerRow(static_cast<int64_t>(width)) *
                                    e8p::kCodeBytes);
    offsets[g + 1] = offsets[g] + static_cast<int64_t>(bytes);
  }
  return offsets;
}

int64_t E8pVectorsPerRow(int64_t width) { return (width + e8p::kDim - 1) / e8p::kDim; }

absl::Status PackGroupCodes(std::span<const uint8_t> unpacked, QuantizedTensor* qt) {
  if (!IsBitPacked(qt->method)) {
    return Invalid(*qt, absl::StrCat(qt->method, " codes are not bit-packed codes"));
  }
  const int64_t groups = qt->NumGroups();
  RETURN_IF_ERROR(CheckArraySize(*qt, "bits", qt->bits.size(), groups));
  RETURN_IF_ERROR(CheckArraySize(*qt, "unpacked codes", unpacked.size(), qt->rows * qt->cols));
  for (uint8_t b : qt->bits) {
    if (b < packed::kMinCodeBits || b > packed::kMaxCodeBits) {
      return Invalid(*qt, absl::StrCat("bits per code must be in 1..8, got ",
                                       static_cast<int>(b)));
    }
  }
  qt->offsets = ComputeGroupOffsets(qt->rows, qt->cols, qt->group_size, qt->bits);
  qt->codes.assign(static_cast<size_t>(qt->offsets.back()), 0);
  const std::span<std::byte> all = std::as_writable_bytes(std::span<uint8_t>(qt->codes));
  size_t first_code = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const size_t count = static_cast<size_t>(qt->rows * qt->GroupWidth(g));
    const size_t begin = static_cast<size_t>(qt->offsets[g]);
    const size_t bytes = static_cast<size_t>(qt->offsets[g + 1]) - begin;
    absl::Status s = PackCodes(unpacked.subspan(first_code, count), qt->bits[g],
                               all.subspan(begin, bytes));
    if (!s.ok()) return Invalid(*qt, absl::StrCat("group ", g, ": ", s.message()));
    first_code += count;
  }
  return absl::OkStatus();
}

absl::Status UnpackGroupCodes(const QuantizedTensor& qt, int64_t g,
                              std::span<uint8_t> out) {
  if (!IsBitPacked(qt.method)) {
    return Invalid(qt, absl::StrCat(qt.method, " codes are not bit-packed codes"));
  }
  if (g < 0 || g >= qt.NumGroups()) {
    return Invalid(qt, absl::StrCat("group ", g, " out of range"));
  }
  const size_t begin = static_cast<size_t>(qt.offsets[g]);
  const size_t bytes = static_cast<size_t>(qt.offsets[g + 1]) - begin;
  RETURN_IF_ERROR(CheckArraySize(qt, "output codes", out.size(), qt.rows * qt.GroupWidth(g)));
  return UnpackCodes(std::as_bytes(std::span<const uint8_t>(qt.codes)).subspan(begin, bytes),
                     qt.bits[g], out);
}

absl::Status PackE8pCodes(std::span<const uint16_t> codes, QuantizedTensor* qt) {
  if (qt->method != kMethodE8p) return Invalid(*qt, "PackE8pCodes needs method 'e8p'");
  RETURN_IF_ERROR(ValidateScalars(*qt));
  const int64_t groups = qt->NumGroups();
  RETURN_IF_ERROR(CheckArraySize(*qt, "bits", qt->bits.size(), groups));
  qt->offsets = ComputeGroupOffsets(qt->method, qt->rows, qt->cols, qt->group_size, qt->bits);
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
  if (qt.method != kMethodE8p) return Invalid(qt, "UnpackE8pGroupCodes needs method 'e8p'");
  if (g < 0 || g >= qt.NumGroups()) {
    return Invalid(qt, absl::StrCat("group ", g, " out of range"));
  }
  const int64_t count = (qt.offsets[g + 1] - qt.offsets[g]) / e8p::kCodeBytes;
  RETURN_IF_ERROR(CheckArraySize(qt, "output codes", out.size(), count));
  const uint8_t* p = qt.codes.data() + qt.offsets[g];
  for (int64_t i = 0; i < count; ++i) {
    out[i] = static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8));
  }
  return absl::OkStatus();
}

std::vector<packed::GroupDesc> MakeGroupDescs(const QuantizedTensor& qt) {
  std::vector<packed::GroupDesc> descs(static_cast<size_t>(qt.NumGroups()));
  for (size_t g = 0; g < descs.size(); ++g) {
    descs[g] = packed::GroupDesc{
        .code_offset = static_cast<uint64_t>(qt.offsets[g]),
        .first_col = static_cast<uint32_t>(g * qt.group_size),
        .width = static_cast<uint32_t>(qt.GroupWidth(g)),
        .bits = qt.bits.empty() ? 0u : qt.bits[g],
        .dim = static_cast<uint32_t>(qt.dim)};
  }
  return descs;
}

double BitsAccounting::PayloadPerWeight() const {
  return weights == 0 ? 0.0 : static_cast<double>(payload_bits) / static_cast<double>(weights);
}

double BitsAccounting::TotalPerWeight() const {
  return weights == 0 ? 0.0 : static_cast<double>(total_bits) / static_cast<double>(weights);
}

BitsAccounting& BitsAccounting::operator+=(const BitsAccounting& other) {
  weights += other.weights;
  payload_bits += other.payload_bits;
  total_bits += other.total_bits;
  return *this;
}

BitsAccounting ComputeAccounting(const QuantizedTensor& qt) {
  BitsAccounting acc;
  acc.weights = static_cast<uint64_t>(qt.rows * qt.cols);
  if (qt.method == kMethodPvq) acc.payload_bits = PvqPayloadBits(qt);
  for (int64_t g = 0; g < qt.NumGroups() && qt.method != kMethodPvq; ++g) {
    acc.payload_bits += qt.method == kMethodE8p
        ? static_cast<uint64_t>(qt.rows * E8pVectorsPerRow(qt.GroupWidth(g))) * 8 *
              e8p::kCodeBytes
        : static_cast<uint64_t>(qt.rows * qt.GroupWidth(g)) * qt.bits[g];
  }
  // offsets.back() rather than codes.size(): a reader may hold the codes
  // elsewhere (see QuantizedTensorFromComponents' load_codes).
  const uint64_t code_bytes = qt.offsets.empty() ? 0 : static_cast<uint64_t>(qt.offsets.back());
  const uint64_t bytes = code_bytes + qt.bits.size() + 8 * (qt.offsets.size() +
                                                           qt.rht_seed.size()) +
                         4 * (qt.generators.size() + qt.mu.size() + qt.scale.size() +
                              qt.zero.size() + qt.pulses.size() + qt.gains.size() +
                              qt.norms.size() + qt.row_scale.size());
  acc.total_bits = 8 * bytes;
  return acc;
}

absl::Status DequantizeRef(const QuantizedTensor& qt, std::span<float> out) {
  RETURN_IF_ERROR(ValidateQuantizedTensor(qt));
  RETURN_IF_ERROR(CheckArraySize(qt, "output", out.size(), qt.rows * qt.cols));
  if (qt.rht_seed.empty()) {
    RETURN_IF_ERROR(DecodeGroups<float>(qt, out));
  } else {
    RETURN_IF_ERROR(DecodeWithRht(qt, out));
  }
  // Valid side information can still overflow float (huge G or mu).
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      return Invalid(qt, absl::StrCat("weight at row ", i / qt.cols, ", column ",
                                      i % qt.cols, " decodes to ", out[i]));
    }
  }
  return absl::OkStatus();
}

std::string ComponentTensorName(std::string_view tensor, std::string_view component) {
  return absl::StrCat(Sv(tensor), Sv(kComponentInfix), Sv(component));
}

std::vector<std::string> ComponentNames(std::string_view method, bool with_rht_seed,
                                        bool with_row_scale) {
  std::vector<std::string> names;
  if (method == kMethodGlvq) names = {"bits", "codes", "generators", "mu", "offsets", "scale"};
  if (method == kMethodRtn) names = {"bits", "codes", "offsets", "scale", "zero"};
  if (method == kMethodE8p) names = {"bits", "codes", "offsets", "scale"};
  if (method == kMethodPvq) names = {"codes", "gains", "norms", "offsets", "pulses"};
  if (method == kMethodTrellis) names = {"bits", "codes", "offsets", "row_scale", "scale"};
  if (with_rht_seed && !names.empty()) names.emplace_back(kRhtSeedComponent);
  if (with_row_scale && method == kMethodGlvq) names.emplace_back(kRowScaleComponent);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<TensorToWrite> ComponentTensors(const QuantizedTensor& qt) {
  std::vector<TensorToWrite> out;
  for (const ComponentSpec& spec : ComponentSpecs(qt, static_cast<int64_t>(qt.codes.size()),
                                                  !qt.rht_seed.empty(), !qt.row_scale.empty())) {
    std::span<const std::byte> data;
    if (spec.name == "bits") data = Bytes(qt.bits);
    if (spec.name == "codes") data = Bytes(qt.codes);
    if (spec.name == "offsets") data = Bytes(qt.offsets);
    if (spec.name == "generators") data = Bytes(qt.generators);
    if (spec.name == "mu") data = Bytes(qt.mu);
    if (spec.name == "scale") data = Bytes(qt.scale);
    if (spec.name == "zero") data = Bytes(qt.zero);
    if (spec.name == "pulses") data = Bytes(qt.pulses);
    if (spec.name == "gains") data = Bytes(qt.gains);
    if (spec.name == "norms") data = Bytes(qt.norms);
    if (spec.name == kRowScaleComponent) data = Bytes(qt.row_scale);
    if (spec.name == kRhtSeedComponent) data = Bytes(qt.rht_seed);
    out.push_back({ComponentTensorName(qt.name, spec.name), spec.dtype, spec.shape, data});
  }
  return out;
}

absl::StatusOr<QuantizedTensor> QuantizedTensorFromComponents(
    const QuantizedTensor& meta,
    const std::map<std::string, TensorView, std::less<>>& components,
    bool load_codes) {
  RETURN_IF_ERROR(ValidateScalars(meta));
  RETURN_IF_ERROR(CheckComponentSet(meta, components));
  QuantizedTensor qt;
  qt.name = meta.name;
  qt.method = meta.method;
  qt.source_dtype = meta.source_dtype;
  qt.rows = meta.rows;
  qt.cols = meta.cols;
  qt.group_size = meta.group_size;
  qt.dim = meta.dim;
  qt.quality = meta.quality;
  for (const ComponentSpec& spec :
       ComponentSpecs(meta, 0, components.contains(kRhtSeedComponent),
                      components.contains(kRowScaleComponent))) {
    const TensorView& view = components.find(spec.name)->second;
    RETURN_IF_ERROR(CheckComponentView(meta, spec, view));
    CopyComponent(spec.name, view, load_codes, &qt);
  }
  const TensorView& codes = components.find("codes")->second;
  RETURN_IF_ERROR(ValidateQuantizedTensor(
      qt, std::span(reinterpret_cast<const uint8_t*>(codes.data.data()), codes.data.size())));
  return qt;
}

}  // namespace glvq
