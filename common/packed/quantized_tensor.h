// One quantized weight matrix in the packed format v1 (docs/format.md):
// the owning in-memory form, its validation, its bit accounting, the
// reference CPU decoder, and the mapping to and from the component tensors
// `<name>.glvq.<component>` stored in safetensors.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/packed/layout.h"
#include "common/safetensors/writer.h"
#include "common/tensor/dtype.h"
#include "common/tensor/tensor_view.h"

namespace glvq {

inline constexpr std::string_view kMethodGlvq = "glvq";
inline constexpr std::string_view kMethodRtn = "rtn";
inline constexpr std::string_view kMethodE8p = "e8p";
inline constexpr std::string_view kMethodPvq = "pvq";
inline constexpr std::string_view kMethodTrellis = "trellis";

// The optional component that records a randomized Hadamard transform
// (docs/format.md §4.4); any method may carry it.
inline constexpr std::string_view kRhtSeedComponent = "rht_seed";
// The optional per-row gain of a glvq tensor (docs/format.md §4.2).
inline constexpr std::string_view kRowScaleComponent = "row_scale";

// The share of a tensor's weights, by magnitude, that TensorQuality's
// top_error looks at (0.01 %).
inline constexpr double kTopWeightShare = 1e-4;

// Per-tensor quality figures recorded in the manifest (all finite).
struct TensorQuality {
  double nmse = 0;        // ||W - W_hat||^2 / ||W||^2
  double sqnr_db = 0;     // -10 log10(nmse), capped by the producer
  double proxy_loss = 0;  // tr(dW H dW^T) / tr(W H W^T)
  // Harm to the largest weights, which weight NMSE hides: the worst
  // relative error |w - w_hat| / |w| among the largest-magnitude
  // kTopWeightShare of the weights (at least one). A quantizer that clips
  // or crushes outliers shows here first.
  double top_error = 0;
  bool operator==(const TensorQuality&) const = default;
};

// A quantized [rows, cols] weight. Columns are cut into G = NumGroups()
// groups of `group_size` consecutive columns (the last may be narrower);
// every per-group array is indexed by group. All float arrays are F32 as
// stored on disk. With `rht_seed` set, the codes describe W̃ = T_m W T_nᵀ
// and DequantizeRef undoes the transform.
struct QuantizedTensor {
  std::string name;            // the source tensor, e.g. "layers.0.mlp.up.weight"
  std::string method;          // kMethodGlvq, kMethodRtn, kMethodE8p, kMethodPvq, kMethodTrellis

  DType source_dtype = DType::kF32;  // dtype of the source weight (float)
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t group_size = 0;      // columns per group
  int64_t dim = 0;             // vector dimension d; 1 for rtn, 8 for e8p, D for pvq;
                               // trellis: the window L (state bits)
  // trellis: rows per tail-biting sequence (1..64; trellis_tensor.h); 1
  // for every other method.
  int64_t tile_rows = 1;
  std::vector<uint8_t> bits;   // [G], bits per code (e8p: per weight, 2), 1..8; pvq: none
  std::vector<int64_t> offsets;  // [G+1], byte offset of each group in `codes`
  std::vector<uint8_t> codes;  // all group streams, concatenated
  std::vector<float> generators;  // glvq: [G, d, d] row-major
  std::vector<float> mu;       // glvq: [G], companding (0 = none)
  std::vector<float> scale;    // glvq, e8p: [G]; rtn: [G, rows]
  std::vector<float> zero;     // rtn: [G, rows]
  // pvq: [G, 2], pulses K_g of the whole vectors' pyramid P(D, K_g) and K'_g
  // of the short vector's P(width_g mod D, K'_g) (0: no short vector).
  std::vector<int32_t> pulses;
  // pvq: [S, 2^b] gain levels relative to the row norm, for whole vectors and
  // (S = 2, when some group has a short vector) for short ones.
  std::vector<float> gains;
  std::vector<float> norms;    // pvq: [rows], row norms
  // glvq: empty, or [rows] per-row gains (> 0): row r decodes to
  // row_scale[r] · scale[g] · F_µ⁻¹(G z). trellis: [rows] value scales
  // (≥ 0), always present (common/packed/trellis_tensor.h).
  std::vector<float> row_scale;
  // Empty, or [2]: the seeds of T_m (rows) and T_n (columns), each a
  // uint64 stored bit for bit as I64.
  std::vector<int64_t> rht_seed;
  std::optional<TensorQuality> quality;

  int64_t NumGroups() const;
  // Columns of group g (g < NumGroups()).
  int64_t GroupWidth(int64_t g) const;
  int64_t NumWeights() const { return rows * cols; }

  bool operator==(const QuantizedTensor&) const = default;
};

// Checks that `qt` is a well-formed v1 tensor: known method, float source
// dtype, positive sizes, every array of the size its shape implies, bits in
// 1..8 (e8p: 2), offsets exactly the prefix sums of the group stream sizes,
// padding bits zero, scale > 0 and finite, mu >= 0 and finite, generators
// and zero points finite, rht_seed empty or [2], quality finite; pvq: see
// ValidatePvqLayout and ValidatePvqCodes (common/packed/pvq_tensor.h).
// INVALID_ARGUMENT naming the tensor and the first problem found.
absl::Status ValidateQuantizedTensor(const QuantizedTensor& qt);
// The same, but with the codes taken from `codes` instead of qt.codes (so a
// reader can validate codes in place, e.g. in a memory map).
absl::Status ValidateQuantizedTensor(const QuantizedTensor& qt,
                                     std::span<const uint8_t> codes);

// Byte offsets of the group streams for per-group `bits` ([G+1] entries),
// as the format requires them for the bit-packed methods (glvq, rtn).
// Assumes valid sizes and bits.
std::vector<int64_t> ComputeGroupOffsets(int64_t rows, int64_t cols,
                                         int64_t group_size,
                                         std::span<const uint8_t> bits);
// The same for glvq, rtn and e8p: e8p streams hold rows · ceil(width / 8)
// 16-bit codes per group whatever `bits` says. (pvq streams depend on its
// pulses and gains instead: common/packed/pvq_tensor.h.)
std::vector<int64_t> ComputeGroupOffsets(std::string_view method, int64_t rows,
                                         int64_t cols, int64_t group_size,
                                         std::span<const uint8_t> bits);

// E8P codewords per row of a group of `width` columns: ceil(width / 8); a
// ragged row's last codeword covers fewer than 8 columns.
int64_t E8pVectorsPerRow(int64_t width);

// Fills qt->offsets and qt->codes from unpacked codes (one byte per code):
// `unpacked` holds the groups one after the other, group g as its
// rows * GroupWidth(g) codes row-major, so rows * cols bytes in all. Uses
// qt's rows, cols, group_size and bits. INVALID_ARGUMENT on a size mismatch,
// bits out of range, a code that does not fit its group's bits, or an e8p or
// pvq tensor (see PackE8pCodes, PackPvqCodes).
absl::Status PackGroupCodes(std::span<const uint8_t> unpacked, QuantizedTensor* qt);

// The inverse of PackGroupCodes for a valid bit-packed tensor: writes group
// g's rows * GroupWidth(g) codes into `out`, which must have exactly that
// size.
absl::Status UnpackGroupCodes(const QuantizedTensor& qt, int64_t g,
                              std::span<uint8_t> out);

// E8P counterparts: `codes` holds the groups one after the other, group g as
// rows * E8pVectorsPerRow(GroupWidth(g)) indices row-major. Pack fills
// qt->offsets and qt->codes (little-endian uint16) and needs qt->method ==
// "e8p" and valid sizes; Unpack writes group g's indices into `out`.
absl::Status PackE8pCodes(std::span<const uint16_t> codes, QuantizedTensor* qt);
absl::Status UnpackE8pGroupCodes(const QuantizedTensor& qt, int64_t g,
                                 std::span<uint16_t> out);

// Device-friendly per-group descriptors ([G] entries) of a valid tensor
// (pvq, which has no per-group bits: bits 0).
std::vector<packed::GroupDesc> MakeGroupDescs(const QuantizedTensor& qt);

// Exact size accounting of a quantized tensor (or a sum of them).
struct BitsAccounting {
  uint64_t weights = 0;       // quantized weights (rows * cols)
  uint64_t payload_bits = 0;  // code bits: sum over groups of rows*width*bits
                              // (e8p: 16 per codeword, ragged ones included;
                              // pvq: index and gain bits of every record)
  uint64_t total_bits = 0;    // 8 * bytes of every component tensor

  double PayloadPerWeight() const;  // 0 when weights == 0
  double TotalPerWeight() const;    // 0 when weights == 0
  BitsAccounting& operator+=(const BitsAccounting& other);
  bool operator==(const BitsAccounting&) const = default;
};

// Accounting of a valid tensor. total_bits counts exactly the bytes the
// component tensors occupy in safetensors (codes incl. padding, bits,
// offsets, the method's float arrays, and rht_seed when present).
BitsAccounting ComputeAccounting(const QuantizedTensor& qt);

// Reference decoder (the oracle for faster decoders): writes the dense
// weights, rows * cols F32 row-major, into `out`, which must have exactly
// that size. Computes in double (including the inverse RHT when rht_seed is
// set) and rounds once to float, as docs/format.md specifies.
// INVALID_ARGUMENT if `qt` is invalid or `out` has the wrong size.
absl::Status DequantizeRef(const QuantizedTensor& qt, std::span<float> out);

// "<tensor>.glvq.<component>"; no source tensor may contain kComponentInfix.
inline constexpr std::string_view kComponentInfix = ".glvq.";
std::string ComponentTensorName(std::string_view tensor, std::string_view component);

// The component names of a method, sorted, with the optional "rht_seed"
// if `with_rht_seed`; empty for an unknown method. Readers reject any
// component outside this set.
// With `with_row_scale`, glvq's names include "row_scale" (other methods
// have none, so a row_scale there is an unknown component).
std::vector<std::string> ComponentNames(std::string_view method, bool with_rht_seed = false,
                                        bool with_row_scale = false);

// Views of qt's component tensors, ready for WriteSafetensors. The views
// borrow qt's arrays: qt must outlive them and stay unmodified.
std::vector<TensorToWrite> ComponentTensors(const QuantizedTensor& qt);

// Rebuilds a tensor from its component tensors. `meta` supplies every
// scalar field (name, method, source_dtype, rows, cols, group_size, dim,
// quality); its arrays are replaced. `components` maps component names
// ("codes", "bits", ...) to views and must hold exactly the method's
// components, plus optionally "rht_seed" (any other component is an
// error). With `load_codes` false, qt.codes stays empty but the codes view
// is still checked (ValidateQuantizedTensor(qt, codes)). Checks every dtype
// and shape and validates the result: INVALID_ARGUMENT naming the tensor
// and component on any mismatch.
absl::StatusOr<QuantizedTensor> QuantizedTensorFromComponents(
    const QuantizedTensor& meta,
    const std::map<std::string, TensorView, std::less<>>& components,
    bool load_codes = true);

}  // namespace glvq
