// What every method of the packed format shares: scalar checks, the
// component set and its I/O, accounting, the inverse RHT and the bit-packed
// code streams. Each method's own part is its TensorFormat
// (tensor_format.h), one file per method.
#include "common/packed/quantized_tensor.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/packed/bitpack.h"
#include "common/packed/hadamard.h"
#include "common/packed/tensor_format.h"

namespace glvq {
namespace {

static_assert(std::endian::native == std::endian::little,
              "component tensors are little-endian and copied as raw bytes");

// Row and column counts fit the uint32 fields of packed::GroupDesc, and
// rows * cols * 8 bits cannot overflow uint64.
constexpr int64_t kMaxExtent = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxWeights = int64_t{1} << 48;

// The format of a tensor whose scalars are valid.
const TensorFormat& FormatOf(const QuantizedTensor& qt) { return *FindTensorFormat(qt.method); }

// glvq and rtn: b-bit codes packed LSB-first (PackGroupCodes).
bool IsBitPacked(std::string_view method) {
  return dynamic_cast<const BitPackedTensorFormat*>(FindTensorFormat(method)) != nullptr;
}

absl::Status CheckExtent(const QuantizedTensor& qt, absl::string_view what,
                         int64_t value) {
  if (value < 1 || value > kMaxExtent) {
    return InvalidTensor(qt, absl::StrCat(what, " must be in 1..", kMaxExtent, ", got ", value));
  }
  return absl::OkStatus();
}

// Every array field that is a component of some method, with its size.
std::vector<std::pair<std::string_view, size_t>> ArrayFieldSizes(const QuantizedTensor& qt) {
  return {{"bits", qt.bits.size()},         {"generators", qt.generators.size()},
          {"mu", qt.mu.size()},             {"scale", qt.scale.size()},
          {"zero", qt.zero.size()},         {"pulses", qt.pulses.size()},
          {"gains", qt.gains.size()},       {"norms", qt.norms.size()},
          {kRowScaleComponent, qt.row_scale.size()}};
}

// The arrays the method does not store are empty, and rht_seed is empty or
// [2]: each format then checks only its own arrays.
absl::Status ValidateUnusedArrays(const QuantizedTensor& qt) {
  if (qt.rht_seed.size() != 0 && qt.rht_seed.size() != 2) {
    return InvalidTensor(qt, absl::StrCat("rht_seed has ", qt.rht_seed.size(),
                                          " entries, expected 0 or 2"));
  }
  if (qt.method != kMethodTrellis && qt.tile_rows != 1) {
    return InvalidTensor(qt, absl::StrCat("tile_rows is ", qt.tile_rows, ", only trellis tiles rows"));
  }
  const std::vector<ComponentSpec> specs =
      FormatOf(qt).Components(qt, 0, !qt.row_scale.empty());
  for (const auto& [name, size] : ArrayFieldSizes(qt)) {
    const bool stored = std::any_of(specs.begin(), specs.end(),
                                    [&](const ComponentSpec& c) { return c.name == name; });
    if (!stored) RETURN_IF_ERROR(CheckArraySize(qt, name, size, 0));
  }
  return absl::OkStatus();
}

// Decodes in double, undoes the RHT when the tensor has one, and rounds
// once to float.
absl::Status Decode(const QuantizedTensor& qt, std::span<float> out) {
  std::vector<double> dense(out.size());
  RETURN_IF_ERROR(FormatOf(qt).Decode(qt, dense));
  if (!qt.rht_seed.empty()) {
    const RhtSeeds seeds{static_cast<uint64_t>(qt.rht_seed[0]),
                         static_cast<uint64_t>(qt.rht_seed[1])};
    RhtInverse(dense, qt.rows, qt.cols, seeds);
  }
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

std::vector<ComponentSpec> ComponentSpecs(const QuantizedTensor& qt, int64_t code_bytes,
                                          bool with_rht_seed, bool with_row_scale) {
  std::vector<ComponentSpec> specs = FormatOf(qt).Components(qt, code_bytes, with_row_scale);
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
    return InvalidTensor(meta, absl::StrCat("components are {", absl::StrJoin(actual, ", "),
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
    return InvalidTensor(meta, absl::StrCat(
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
  RETURN_IF_ERROR(ValidateTensorScalars(qt));
  RETURN_IF_ERROR(ValidateUnusedArrays(qt));
  const TensorFormat& format = FormatOf(qt);
  RETURN_IF_ERROR(format.ValidateLayout(qt));
  const int64_t groups = qt.NumGroups();
  if (codes.size() != static_cast<uint64_t>(qt.offsets[groups])) {
    return InvalidTensor(qt, absl::StrCat("codes has ", codes.size(), " bytes, offsets say ",
                                          qt.offsets[groups]));
  }
  RETURN_IF_ERROR(format.ValidateCodes(qt, codes));
  return format.ValidateSideInfo(qt);
}

absl::Status ValidateTensorScalars(const QuantizedTensor& qt) {
  if (qt.name.empty()) return InvalidTensor(qt, "empty name");
  const TensorFormat* format = FindTensorFormat(qt.method);
  if (format == nullptr) {
    return InvalidTensor(qt, absl::StrCat("unknown method '", qt.method,
                                          "' (expected 'glvq', 'rtn', 'e8p', 'pvq' or 'trellis')"));
  }
  if (!IsFloatDType(qt.source_dtype)) {
    return InvalidTensor(qt, absl::StrCat("source dtype ", Sv(DTypeName(qt.source_dtype)),
                                          " is not a float dtype"));
  }
  RETURN_IF_ERROR(CheckExtent(qt, "rows", qt.rows));
  RETURN_IF_ERROR(CheckExtent(qt, "cols", qt.cols));
  RETURN_IF_ERROR(CheckExtent(qt, "group_size", qt.group_size));
  if (qt.rows * qt.cols > kMaxWeights) {
    return InvalidTensor(qt, absl::StrCat("rows * cols exceeds ", kMaxWeights));
  }
  RETURN_IF_ERROR(format->ValidateDim(qt));
  if (qt.quality.has_value()) {
    const TensorQuality& q = *qt.quality;
    if (!std::isfinite(q.nmse) || !std::isfinite(q.sqnr_db) ||
        !std::isfinite(q.proxy_loss) || !std::isfinite(q.top_error) || q.top_error < 0) {
      return InvalidTensor(qt, "quality figures must be finite");
    }
  }
  return absl::OkStatus();
}

std::vector<int64_t> ComputeGroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                         std::span<const uint8_t> bits) {
  return GlvqTensorFormat().GroupOffsets(rows, cols, group_size, bits);
}

std::vector<int64_t> ComputeGroupOffsets(std::string_view method, int64_t rows, int64_t cols,
                                         int64_t group_size, std::span<const uint8_t> bits) {
  const TensorFormat* format = FindTensorFormat(method);
  return (format ? *format : GlvqTensorFormat()).GroupOffsets(rows, cols, group_size, bits);
}

absl::Status PackGroupCodes(std::span<const uint8_t> unpacked, QuantizedTensor* qt) {
  if (!IsBitPacked(qt->method)) {
    return InvalidTensor(*qt, absl::StrCat(qt->method, " codes are not bit-packed codes"));
  }
  const int64_t groups = qt->NumGroups();
  RETURN_IF_ERROR(CheckArraySize(*qt, "bits", qt->bits.size(), groups));
  RETURN_IF_ERROR(CheckArraySize(*qt, "unpacked codes", unpacked.size(), qt->rows * qt->cols));
  for (uint8_t b : qt->bits) {
    if (b < packed::kMinCodeBits || b > packed::kMaxCodeBits) {
      return InvalidTensor(*qt, absl::StrCat("bits per code must be in 1..8, got ",
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
    if (!s.ok()) return InvalidTensor(*qt, absl::StrCat("group ", g, ": ", s.message()));
    first_code += count;
  }
  return absl::OkStatus();
}

absl::Status UnpackGroupCodes(const QuantizedTensor& qt, int64_t g,
                              std::span<uint8_t> out) {
  if (!IsBitPacked(qt.method)) {
    return InvalidTensor(qt, absl::StrCat(qt.method, " codes are not bit-packed codes"));
  }
  if (g < 0 || g >= qt.NumGroups()) {
    return InvalidTensor(qt, absl::StrCat("group ", g, " out of range"));
  }
  const size_t begin = static_cast<size_t>(qt.offsets[g]);
  const size_t bytes = static_cast<size_t>(qt.offsets[g + 1]) - begin;
  RETURN_IF_ERROR(CheckArraySize(qt, "output codes", out.size(), qt.rows * qt.GroupWidth(g)));
  return UnpackCodes(std::as_bytes(std::span<const uint8_t>(qt.codes)).subspan(begin, bytes),
                     qt.bits[g], out);
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
  acc.payload_bits = FormatOf(qt).PayloadBits(qt);
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
  RETURN_IF_ERROR(Decode(qt, out));
  // Valid side information can still overflow float (huge G or mu).
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      return InvalidTensor(qt, absl::StrCat("weight at row ", i / qt.cols, ", column ",
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
  const TensorFormat* format = FindTensorFormat(method);
  if (format == nullptr) return {};
  // The names do not depend on the shape: any one-weight tensor lists them.
  QuantizedTensor one;
  one.method = std::string(method);
  one.rows = one.cols = one.group_size = one.dim = 1;
  std::vector<std::string> names;
  for (const ComponentSpec& spec : ComponentSpecs(one, 0, with_rht_seed, with_row_scale)) {
    names.emplace_back(spec.name);
  }
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
  RETURN_IF_ERROR(ValidateTensorScalars(meta));
  RETURN_IF_ERROR(CheckComponentSet(meta, components));
  QuantizedTensor qt;
  qt.name = meta.name;
  qt.method = meta.method;
  qt.source_dtype = meta.source_dtype;
  qt.rows = meta.rows;
  qt.cols = meta.cols;
  qt.group_size = meta.group_size;
  qt.dim = meta.dim;
  qt.tile_rows = meta.tile_rows;
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
