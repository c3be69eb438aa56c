// One method's part of the packed format: which side-information
// components it stores, how its group streams are laid out and checked,
// how many of its bits are code bits, and how its codes decode (the
// reference decoder). quantized_tensor.cc holds what every method shares
// (scalars, the component set, rht_seed, accounting, the inverse RHT) and
// dispatches the rest here, so a new method is one more TensorFormat in
// its own file (glvq_tensor.cc, rtn_tensor.cc, e8p_tensor.cc,
// pvq_tensor.cc, trellis_tensor.cc) and one line in FindTensorFormat.
//
// Every function assumes the checks before it passed: ValidateDim and the
// shared scalar checks before ValidateLayout; a valid layout before
// ValidateCodes and ValidateSideInfo; a valid tensor before PayloadBits and
// Decode. Errors are INVALID_ARGUMENT naming the tensor (InvalidTensor).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/tensor/dtype.h"
#include "common/packed/quantized_tensor.h"

namespace glvq {

// A component tensor "<tensor>.glvq.<name>" (docs/format.md §4) as a
// method stores it.
struct ComponentSpec {
  std::string_view name;       // one of the QuantizedTensor array fields
  DType dtype;
  std::vector<int64_t> shape;  // "codes": [bytes], its length from offsets
};

class TensorFormat {
 public:
  virtual ~TensorFormat() = default;

  // `dim` within what the method allows (vector dimension, or the trellis
  // window).
  virtual absl::Status ValidateDim(const QuantizedTensor& qt) const = 0;
  // bits (when the method has them) and offsets exactly as GroupOffsets
  // computes them; pvq checks its whole side information here, since its
  // offsets follow from it.
  virtual absl::Status ValidateLayout(const QuantizedTensor& qt) const = 0;
  // The group streams in `codes` (offsets[G] bytes): one encoding per
  // tensor (padding bits zero), every index in range.
  virtual absl::Status ValidateCodes(const QuantizedTensor& qt,
                                     std::span<const uint8_t> codes) const = 0;
  // The method's side-information arrays: sizes and values. (That the
  // arrays the method does not store are empty is checked for every
  // method by quantized_tensor.cc, from Components.)
  virtual absl::Status ValidateSideInfo(const QuantizedTensor& qt) const = 0;

  // The components the method stores, rht_seed excluded, in file order;
  // `with_row_scale`: an optional row_scale is present (glvq).
  virtual std::vector<ComponentSpec> Components(const QuantizedTensor& qt, int64_t code_bytes,
                                                bool with_row_scale) const = 0;
  // Byte offsets of the group streams ([G + 1] entries) for per-group
  // `bits`. pvq: empty (its offsets depend on pulses and gains).
  virtual std::vector<int64_t> GroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                            std::span<const uint8_t> bits) const = 0;
  // The offsets `qt` must have: GroupOffsets of its shape and bits, unless
  // the layout has more parameters (trellis: tile_rows).
  virtual std::vector<int64_t> TensorOffsets(const QuantizedTensor& qt) const {
    return GroupOffsets(qt.rows, qt.cols, qt.group_size, qt.bits);
  }
  // Code bits proper (BitsAccounting::payload_bits).
  virtual uint64_t PayloadBits(const QuantizedTensor& qt) const = 0;
  // The weights as the codes describe them (before any inverse RHT), rows ×
  // cols row-major, in double; converting each to float once is the
  // format's single rounding.
  virtual absl::Status Decode(const QuantizedTensor& qt, std::span<double> out) const = 0;
};

// What glvq and rtn share: b-bit codes packed LSB-first, one stream per
// group (rows · width · bits[g] bits, padded to a byte), bits [G] in 1..8.
class BitPackedTensorFormat : public TensorFormat {
 public:
  absl::Status ValidateLayout(const QuantizedTensor& qt) const override;
  absl::Status ValidateCodes(const QuantizedTensor& qt,
                             std::span<const uint8_t> codes) const override;
  std::vector<int64_t> GroupOffsets(int64_t rows, int64_t cols, int64_t group_size,
                                    std::span<const uint8_t> bits) const override;
  uint64_t PayloadBits(const QuantizedTensor& qt) const override;
  absl::Status Decode(const QuantizedTensor& qt, std::span<double> out) const override;

 protected:
  // Writes group g of rows × cols `out` from its unpacked codes (one byte
  // each, rows × GroupWidth(g) row-major).
  virtual void DecodeGroup(const QuantizedTensor& qt, int64_t g, std::span<const uint8_t> codes,
                           std::span<double> out) const = 0;
};

// The format of a method name ("glvq", "rtn", "e8p", "pvq", "trellis"), or
// nullptr for any other. The objects live for the whole program.
const TensorFormat* FindTensorFormat(std::string_view method);

// The formats, one per file.
const TensorFormat& GlvqTensorFormat();
const TensorFormat& RtnTensorFormat();
const TensorFormat& E8pTensorFormat();
const TensorFormat& PvqTensorFormat();
const TensorFormat& TrellisTensorFormat();

// Checks the formats share.

// Name, known method, float source dtype, extents, dim (ValidateDim) and
// quality figures: everything that does not depend on the arrays. After
// it, NumGroups() and GroupWidth() are meaningful.
absl::Status ValidateTensorScalars(const QuantizedTensor& qt);
// INVALID_ARGUMENT "quantized tensor '<name>': <problem>".
absl::Status InvalidTensor(const QuantizedTensor& qt, std::string_view problem);
// `what` has `expected` entries.
absl::Status CheckArraySize(const QuantizedTensor& qt, std::string_view what, size_t actual,
                            int64_t expected);
// Every value satisfies `ok`; else names the first one and `requirement`.
absl::Status CheckAllValues(const QuantizedTensor& qt, std::span<const float> values,
                            std::string_view what, bool (*ok)(float),
                            std::string_view requirement);
bool IsFiniteValue(float v);
bool IsPositiveFinite(float v);
bool IsNonNegativeFinite(float v);
// dim in 1..max_dim.
absl::Status CheckDimRange(const QuantizedTensor& qt, int64_t max_dim);
// The stream components of the methods with per-group bits: "bits" [G],
// "codes" [code_bytes], "offsets" [G + 1]; a format appends its own.
std::vector<ComponentSpec> StreamComponents(const QuantizedTensor& qt, int64_t code_bytes);
// Σ_g rows · width_g · bits[g]: the payload of methods that spend bits[g]
// bits on every weight of group g (glvq, rtn, trellis).
uint64_t PerWeightPayloadBits(const QuantizedTensor& qt);
// bits [G] with every entry in 1..8 (and == only_bits when only_bits > 0),
// offsets [G + 1] equal to `format`'s TensorOffsets.
absl::Status ValidateBitsAndOffsets(const TensorFormat& format, const QuantizedTensor& qt,
                                    int only_bits = 0);

}  // namespace glvq
