// The E8P codebook of the packed "e8p" method (docs/format.md §4.3): QuIP#'s
// 2-bit E8 codebook ("E8P12"), 2^16 codewords in E8 + ¼, one 16-bit index
// per 8 weights. Only the index → codeword map lives here (the decoder
// needs it); the nearest-codeword search is in worker/cpu/e8p_codebook.h.
//
// Structure. A codeword is c = s ⊙ a + t·¼·1 where
//  - a is one of 256 "abs" vectors with positive half-integer entries
//    (½, 3/2 or 5/2): the 227 with ‖a‖² ≤ 10, then 29 of the 56 with five
//    entries 3/2 and three ½ (‖a‖² = 12);
//  - s ∈ {±1}^8 with Σ s_i a_i even, so that s ⊙ a lies in D8 + ½ ⊂ E8;
//    flipping one sign changes that sum by an odd 2·a_i, so exactly half of
//    the patterns qualify and 7 sign bits suffice;
//  - t = ±1. Hence c − ¼·1 ∈ E8 for every codeword.
// 256 · 128 · 2 = 65 536 codewords, all distinct.
#pragma once

#include <array>
#include <cstdint>

namespace glvq::e8p {

inline constexpr int kDim = 8;          // weights per codeword
inline constexpr int kNumAbs = 256;     // abs vectors
inline constexpr int kCodeBytes = 2;    // one little-endian uint16 per codeword

// Abs vector `a` doubled: entries are the odd integers 2·a_i ∈ {1, 3, 5}.
using DoubledAbs = std::array<int8_t, kDim>;
// The 256 abs vectors in index order (docs/format.md §4.3).
const std::array<DoubledAbs, kNumAbs>& AbsTable();

// Fields of an index: bits 0–7 the abs vector; bits 8–14 negate coordinates
// 1–7 (bit 7 + j for coordinate j); bit 15 picks the shift (+¼ if set, −¼
// if clear). Coordinate 0's sign is implied: it is negated iff the number
// of negated coordinates 1–7 plus Σ a_i is odd, which makes Σ s_i a_i even.
inline int AbsIndex(uint16_t index) { return index & 0xFF; }
inline int SignBits(uint16_t index) { return (index >> 8) & 0x7F; }
inline bool PlusShift(uint16_t index) { return (index >> 15) != 0; }

// Σ a_i mod 2 for abs vector `a` (Σ a_i is an integer: 8 half-integers).
int AbsSumParity(int a);

// The codeword of `index`, exactly (every entry is a multiple of ¼).
std::array<double, kDim> Codeword(uint16_t index);

}  // namespace glvq::e8p
