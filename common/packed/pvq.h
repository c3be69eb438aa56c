// The pyramid codebook of the packed "pvq" method (docs/format.md §4.7,
// docs/algorithms.md §2): P(D, K) = { y ∈ Z^D : Σ|y_i| = K }, its size N(D, K)
// in exact multi-word arithmetic, and the enumeration y ↔ index, a
// bijection onto [0, N(D, K)), that the format stores. Finding a good y for
// a vector is the quantizer's (worker/cpu/pvq_projection.h).
//
// Bounds: 1 ≤ D ≤ kMaxDim, 1 ≤ K ≤ kMaxPulses and N(D, K) < 2^kMaxIndexBits
// (D = 128 fits up to ~4 bits per weight, D = 256 up to ~2). Anything
// beyond is INVALID_ARGUMENT naming D, K and the bits it would need.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace glvq::pvq {

inline constexpr int kMaxDim = 256;
inline constexpr int kMaxPulses = 4096;
inline constexpr int kMaxIndexWords = 8;
inline constexpr int kMaxIndexBits = 64 * kMaxIndexWords;

// N(D, K) as little-endian 64-bit words, and the bits an index takes.
struct PyramidSize {
  std::array<uint64_t, kMaxIndexWords> count{};
  int index_bits = 0;  // ceil(log2 N(D, K)); N >= 2 for D, K >= 1
};

// N(dim, pulses) by the recurrence N(D,K) = N(D−1,K) + N(D−1,K−1) +
// N(D,K−1) in O(D·K) time and O(K) memory (no tables). INVALID_ARGUMENT
// outside the bounds above.
absl::StatusOr<PyramidSize> CountPyramid(int dim, int pulses);

// The largest K with index_bits(D, K) ≤ max_index_bits (0 if not even K = 1
// fits), found by growing K one column of counts at a time (O(D·K)).
// `capped` when a larger K would fit max_index_bits but leaves the bounds
// (K > kMaxPulses or N ≥ 2^kMaxIndexBits). `dim` must be in 1..kMaxDim.
struct PulseLimit {
  int pulses = 0;
  int index_bits = 0;  // of `pulses` (0 when pulses is 0)
  bool capped = false;
};
PulseLimit LargestPulses(int dim, int max_index_bits);

// Counting and prefix tables of one (D, K) and the enumeration they give:
// values ordered 0, +1, −1, +2, −2, … at each position, position 0 most
// significant. Encode is O(D), Decode O(D log K). Indices are `words()`
// little-endian 64-bit words (1, 2, 4 or 8). Immutable once built, so one
// instance may be shared between threads.
class Enumeration {
 public:
  static absl::StatusOr<Enumeration> Create(int dim, int pulses);

  int dim() const { return dim_; }
  int pulses() const { return pulses_; }
  int index_bits() const { return index_bits_; }
  int words() const { return words_; }

  // N(n, k) for 0 ≤ n ≤ dim(), 0 ≤ k ≤ pulses(): words() words.
  const uint64_t* Count(int n, int k) const { return &counts_[Slot(n, k)]; }

  // Index of y (dim() entries with Σ|y_i| = pulses(); not checked) into
  // index[0 .. words()).
  void Encode(const int32_t* y, uint64_t* index) const;
  // y (dim() entries) of an index < N(dim(), pulses()) (see InRange).
  void Decode(const uint64_t* index, int32_t* y) const;
  // Whether index (words() words) < N(dim(), pulses()).
  bool InRange(const uint64_t* index) const;

 private:
  Enumeration(int dim, int pulses, int index_bits, int words);
  size_t Slot(int n, int k) const {
    return (static_cast<size_t>(n) * static_cast<size_t>(pulses_ + 1) + static_cast<size_t>(k)) *
           static_cast<size_t>(words_);
  }
  void BuildTables();
  template <int W> void EncodeW(const int32_t* y, uint64_t* index) const;
  template <int W> void DecodeW(const uint64_t* index, int32_t* y) const;

  int dim_, pulses_, index_bits_, words_;
  std::vector<uint64_t> counts_;    // N(n, k), n = 0..dim
  std::vector<uint64_t> prefixes_;  // P(n, k) = Σ_{j ≤ k} N(n, j), n = 0..dim
};

// Bit I/O of the LSB-first record streams (docs/format.md §3, §4.7):
// stream bit j is bit j mod 8 of byte j / 8. PutBits ORs the low `bits`
// (0..64) bits of `value` into a zeroed stream at bit `pos`.
void PutBits(uint8_t* stream, uint64_t pos, uint64_t value, int bits);
uint64_t GetBits(const uint8_t* stream, uint64_t pos, int bits);
// An index of `bits` bits (≤ 64 · words) as words little-endian words;
// GetIndex clears the words above `bits`.
void PutIndex(uint8_t* stream, uint64_t pos, const uint64_t* index, int bits);
void GetIndex(const uint8_t* stream, uint64_t pos, int bits, int words, uint64_t* index);

}  // namespace glvq::pvq
