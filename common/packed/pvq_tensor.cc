#include "common/packed/pvq_tensor.h"

#include <array>
#include <bit>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/packed/pvq.h"
#include "common/packed/tensor_format.h"

namespace glvq {
namespace {

// Where the records of one group lie in its stream.
struct GroupLayout {
  int64_t whole = 0;       // whole D-vectors per row
  int64_t short_dim = 0;   // k of the row's short vector; 0: none
  int whole_bits = 0;      // index bits of a whole vector
  int short_bits = 0;      // index bits of the short vector
  int gain_bits = 0;

  uint64_t RowBits() const {
    const uint64_t whole_row = static_cast<uint64_t>(whole * (whole_bits + gain_bits));
    return whole_row + (short_dim > 0 ? static_cast<uint64_t>(short_bits + gain_bits) : 0);
  }
  // First bit of row r's vector v.
  uint64_t RecordBit(int64_t r, int64_t v) const {
    return static_cast<uint64_t>(r) * RowBits() +
           static_cast<uint64_t>(v * (whole_bits + gain_bits));
  }
};

int64_t ShortDim(const QuantizedTensor& qt, int64_t g) { return qt.GroupWidth(g) % qt.dim; }

// Layouts of every group of a tensor with valid pulses and gains (one count
// per distinct pyramid).
std::vector<GroupLayout> Layouts(const QuantizedTensor& qt) {
  std::map<std::pair<int64_t, int32_t>, int> bits;
  auto index_bits = [&](int64_t dim, int32_t pulses) {
    auto [it, fresh] = bits.try_emplace({dim, pulses}, 0);
    if (fresh) it->second = pvq::CountPyramid(static_cast<int>(dim), pulses)->index_bits;
    return it->second;
  };
  std::vector<GroupLayout> layouts(static_cast<size_t>(qt.NumGroups()));
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    GroupLayout& l = layouts[g];
    l.whole = qt.GroupWidth(g) / qt.dim;
    l.short_dim = ShortDim(qt, g);
    l.gain_bits = PvqGainBits(qt);
    if (l.whole > 0) l.whole_bits = index_bits(qt.dim, qt.pulses[2 * g]);
    if (l.short_dim > 0) l.short_bits = index_bits(l.short_dim, qt.pulses[2 * g + 1]);
  }
  return layouts;
}

std::vector<int64_t> Offsets(const QuantizedTensor& qt, const std::vector<GroupLayout>& layouts) {
  std::vector<int64_t> offsets(layouts.size() + 1, 0);
  for (size_t g = 0; g < layouts.size(); ++g) {
    const uint64_t bits = static_cast<uint64_t>(qt.rows) * layouts[g].RowBits();
    offsets[g + 1] = offsets[g] + static_cast<int64_t>((bits + 7) / 8);
  }
  return offsets;
}

absl::Status CheckPulses(const QuantizedTensor& qt) {
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    const int64_t short_dim = ShortDim(qt, g);
    const int32_t whole = qt.pulses[2 * g], part = qt.pulses[2 * g + 1];
    if (qt.GroupWidth(g) >= qt.dim) {
      auto size = pvq::CountPyramid(static_cast<int>(qt.dim), whole);
      if (!size.ok()) return InvalidTensor(qt, absl::StrCat("group ", g, ": ", size.status().message()));
    } else if (whole != 0) {
      return InvalidTensor(qt, absl::StrCat("group ", g, " has no whole vectors but pulses ", whole));
    }
    if (short_dim == 0 && part != 0) {
      return InvalidTensor(qt, absl::StrCat("group ", g, " has no short vector but short pulses ", part));
    }
    if (short_dim > 0) {
      auto size = pvq::CountPyramid(static_cast<int>(short_dim), part);
      if (!size.ok()) {
        return InvalidTensor(qt, absl::StrCat("group ", g, " short vector: ", size.status().message()));
      }
    }
  }
  return absl::OkStatus();
}

// index (words little-endian words) < count (pvq::kMaxIndexWords words).
bool Below(const uint64_t* index, int words, const std::array<uint64_t, pvq::kMaxIndexWords>& count) {
  for (int i = pvq::kMaxIndexWords - 1; i >= 0; --i) {
    const uint64_t v = i < words ? index[i] : 0;
    if (v != count[i]) return v < count[i];
  }
  return false;
}

// The pyramid (dimension, pulses, index bits) of row vector v of group g.
struct VectorCode {
  int64_t dim;
  int32_t pulses;
  int index_bits;
  const float* gains;  // this vector's row of the gain levels
};

VectorCode CodeOf(const QuantizedTensor& qt, const GroupLayout& l, int64_t g, int64_t v) {
  const size_t levels = qt.gains.size() / static_cast<size_t>(PvqGainRows(qt));
  if (v < l.whole) return {qt.dim, qt.pulses[2 * g], l.whole_bits, qt.gains.data()};
  return {l.short_dim, qt.pulses[2 * g + 1], l.short_bits, qt.gains.data() + levels};
}

}  // namespace

int64_t PvqVectorsPerRow(int64_t width, int64_t dim) { return (width + dim - 1) / dim; }

int64_t PvqGainRows(const QuantizedTensor& qt) {
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    if (ShortDim(qt, g) != 0) return 2;
  }
  return 1;
}

int PvqGainBits(const QuantizedTensor& qt) {
  const size_t rows = static_cast<size_t>(PvqGainRows(qt));
  if (qt.gains.size() % rows != 0) return -1;
  const size_t levels = qt.gains.size() / rows;
  if (levels == 0 || levels > 256 || !std::has_single_bit(levels)) return -1;
  return std::countr_zero(levels);
}

absl::Status ValidatePvqLayout(const QuantizedTensor& qt) {
  RETURN_IF_ERROR(CheckArraySize(qt, "pulses", qt.pulses.size(), 2 * qt.NumGroups()));
  RETURN_IF_ERROR(CheckArraySize(qt, "norms", qt.norms.size(), qt.rows));
  if (PvqGainBits(qt) < 0) {
    return InvalidTensor(qt, absl::StrCat("gains has ", qt.gains.size(), " entries, expected ",
                                    PvqGainRows(qt), " rows of a power of two in 1..256"));
  }
  RETURN_IF_ERROR(CheckAllValues(qt, qt.gains, "gains", IsFiniteValue, "finite"));
  RETURN_IF_ERROR(CheckAllValues(qt, qt.norms, "norms", IsNonNegativeFinite, "finite and >= 0"));
  RETURN_IF_ERROR(CheckPulses(qt));
  RETURN_IF_ERROR(CheckArraySize(qt, "offsets", qt.offsets.size(), qt.NumGroups() + 1));
  const std::vector<int64_t> expected = Offsets(qt, Layouts(qt));
  for (size_t g = 0; g < expected.size(); ++g) {
    if (qt.offsets[g] != expected[g]) {
      return InvalidTensor(qt, absl::StrCat("offsets[", g, "] is ", qt.offsets[g], ", expected ",
                                      expected[g]));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePvqCodes(const QuantizedTensor& qt, std::span<const uint8_t> codes) {
  const std::vector<GroupLayout> layouts = Layouts(qt);
  std::map<std::pair<int64_t, int32_t>, std::array<uint64_t, pvq::kMaxIndexWords>> counts;
  uint64_t index[pvq::kMaxIndexWords];
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    const GroupLayout& l = layouts[g];
    const uint8_t* stream = codes.data() + qt.offsets[g];
    const uint64_t bits = static_cast<uint64_t>(qt.rows) * l.RowBits();
    if (bits % 8 != 0 && (stream[bits / 8] >> (bits % 8)) != 0) {
      return InvalidTensor(qt, absl::StrCat("group ", g, " has nonzero padding bits"));
    }
    const int64_t per_row = l.whole + (l.short_dim > 0 ? 1 : 0);
    for (int64_t v = 0; v < per_row; ++v) {
      const VectorCode c = CodeOf(qt, l, g, v);
      auto [it, fresh] = counts.try_emplace({c.dim, c.pulses});
      if (fresh) it->second = pvq::CountPyramid(static_cast<int>(c.dim), c.pulses)->count;
      const auto& count = it->second;
      const int words = (c.index_bits + 63) / 64;
      for (int64_t r = 0; r < qt.rows; ++r) {
        pvq::GetIndex(stream, l.RecordBit(r, v), c.index_bits, words, index);
        if (!Below(index, words, count)) {
          return InvalidTensor(qt, absl::StrCat("group ", g, " row ", r, " vector ", v,
                                          " has a pyramid index beyond N(D, K)"));
        }
      }
    }
  }
  return absl::OkStatus();
}

uint64_t PvqPayloadBits(const QuantizedTensor& qt) {
  uint64_t bits = 0;
  for (const GroupLayout& l : Layouts(qt)) bits += static_cast<uint64_t>(qt.rows) * l.RowBits();
  return bits;
}

absl::Status DecodePvq(const QuantizedTensor& qt, std::span<double> out) {
  RETURN_IF_ERROR(CheckArraySize(qt, "output", out.size(), qt.rows * qt.cols));
  const std::vector<GroupLayout> layouts = Layouts(qt);
  std::map<std::pair<int64_t, int32_t>, pvq::Enumeration> enumerations;
  uint64_t index[pvq::kMaxIndexWords];
  std::vector<int32_t> y(static_cast<size_t>(qt.dim));
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    const GroupLayout& l = layouts[g];
    const uint8_t* stream = qt.codes.data() + qt.offsets[g];
    const int64_t per_row = l.whole + (l.short_dim > 0 ? 1 : 0);
    for (int64_t v = 0; v < per_row; ++v) {
      const VectorCode c = CodeOf(qt, l, g, v);
      auto it = enumerations.find({c.dim, c.pulses});
      if (it == enumerations.end()) {
        ASSIGN_OR_RETURN(pvq::Enumeration e,
                         pvq::Enumeration::Create(static_cast<int>(c.dim), c.pulses));
        it = enumerations.emplace(std::make_pair(c.dim, c.pulses), std::move(e)).first;
      }
      const pvq::Enumeration& e = it->second;
      for (int64_t r = 0; r < qt.rows; ++r) {
        const uint64_t at = l.RecordBit(r, v);
        pvq::GetIndex(stream, at, c.index_bits, e.words(), index);
        e.Decode(index, y.data());
        const uint64_t code =
            pvq::GetBits(stream, at + static_cast<uint64_t>(c.index_bits), l.gain_bits);
        int64_t yy = 0;
        for (int64_t i = 0; i < c.dim; ++i) yy += int64_t{y[i]} * y[i];
        const double f = static_cast<double>(qt.norms[r]) * static_cast<double>(c.gains[code]) /
                         std::sqrt(static_cast<double>(yy));
        double* w = &out[r * qt.cols + g * qt.group_size + v * qt.dim];
        for (int64_t i = 0; i < c.dim; ++i) w[i] = f * y[i];
      }
    }
  }
  return absl::OkStatus();
}

absl::Status PackPvqCodes(const PvqCodes& codes, QuantizedTensor* qt) {
  const QuantizedTensor& t = *qt;
  RETURN_IF_ERROR(CheckArraySize(t, "pulses", t.pulses.size(), 2 * t.NumGroups()));
  RETURN_IF_ERROR(CheckPulses(t));
  const int gain_bits = PvqGainBits(t);
  if (gain_bits < 0) return InvalidTensor(t, "gains must hold a power of two of levels in 1..256");
  const std::vector<GroupLayout> layouts = Layouts(t);
  int64_t records = 0;
  for (int64_t g = 0; g < t.NumGroups(); ++g) {
    records += t.rows * PvqVectorsPerRow(t.GroupWidth(g), t.dim);
  }
  RETURN_IF_ERROR(CheckArraySize(t, "gain codes", codes.gain_codes.size(), records));
  RETURN_IF_ERROR(CheckArraySize(t, "indices", codes.indices.size(), records * codes.words));
  qt->offsets = Offsets(t, layouts);
  qt->codes.assign(static_cast<size_t>(qt->offsets.back()), 0);
  size_t j = 0;
  for (int64_t g = 0; g < t.NumGroups(); ++g) {
    const GroupLayout& l = layouts[g];
    if (std::max(l.whole_bits, l.short_bits) > 64 * codes.words) {
      return InvalidTensor(t, absl::StrCat("group ", g, " needs more index bits than the codes hold"));
    }
    uint8_t* stream = qt->codes.data() + qt->offsets[g];
    const int64_t per_row = l.whole + (l.short_dim > 0 ? 1 : 0);
    for (int64_t r = 0; r < t.rows; ++r) {
      for (int64_t v = 0; v < per_row; ++v, ++j) {
        if (codes.gain_codes[j] >> gain_bits != 0) {
          return InvalidTensor(t, absl::StrCat("gain code ", int{codes.gain_codes[j]}, " of record ", j,
                                         " is out of range"));
        }
        const int index_bits = v < l.whole ? l.whole_bits : l.short_bits;
        const uint64_t at = l.RecordBit(r, v);
        pvq::PutIndex(stream, at, &codes.indices[j * static_cast<size_t>(codes.words)],
                      index_bits);
        pvq::PutBits(stream, at + static_cast<uint64_t>(index_bits), codes.gain_codes[j],
                     gain_bits);
      }
    }
  }
  return absl::OkStatus();
}

namespace {

class PvqFormat final : public TensorFormat {
 public:
  absl::Status ValidateDim(const QuantizedTensor& qt) const override {
    return CheckDimRange(qt, pvq::kMaxDim);
  }
  absl::Status ValidateLayout(const QuantizedTensor& qt) const override {
    return ValidatePvqLayout(qt);
  }
  absl::Status ValidateCodes(const QuantizedTensor& qt,
                             std::span<const uint8_t> codes) const override {
    return ValidatePvqCodes(qt, codes);
  }
  // ValidateLayout checked it all: the offsets follow from it.
  absl::Status ValidateSideInfo(const QuantizedTensor&) const override {
    return absl::OkStatus();
  }
  std::vector<ComponentSpec> Components(const QuantizedTensor& qt, int64_t code_bytes,
                                        bool /*with_row_scale*/) const override {
    const int64_t groups = qt.NumGroups();
    // gains: [S, levels], any levels here; ValidatePvqLayout checks them.
    const int64_t gain_rows = PvqGainRows(qt);
    return {{"codes", DType::kU8, {code_bytes}},
            {"offsets", DType::kI64, {groups + 1}},
            {"gains", DType::kF32, {gain_rows, static_cast<int64_t>(qt.gains.size()) / gain_rows}},
            {"norms", DType::kF32, {qt.rows}},
            {"pulses", DType::kI32, {groups, 2}}};
  }
  // The offsets depend on the pulses and gains, not on bits.
  std::vector<int64_t> GroupOffsets(int64_t, int64_t, int64_t,
                                    std::span<const uint8_t>) const override {
    return {};
  }
  uint64_t PayloadBits(const QuantizedTensor& qt) const override { return PvqPayloadBits(qt); }
  absl::Status Decode(const QuantizedTensor& qt, std::span<double> out) const override {
    return DecodePvq(qt, out);
  }
};

}  // namespace

const TensorFormat& PvqTensorFormat() {
  static const PvqFormat format;
  return format;
}

}  // namespace glvq
