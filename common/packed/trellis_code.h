// The decoder side of the "trellis" method: a bitshift trellis code in the
// spirit of QTIP (Tseng et al. 2024). A sequence of T weights is stored as
// exactly T·k bits (k = bits per weight, 1–4); the reconstruction of weight
// t is `scale · V(W_t)`, where the state W_t is an L-bit window of the
// bitstream and V is a table-free pseudo-Gaussian codebook. The encoder (a
// Viterbi search) is worker/cpu/trellis_viterbi.h.
//
// Everything marked GLVQ_HOST_DEVICE is device-safe C++17 (integer and float
// arithmetic only, no std:: containers, no allocation), so that CUDA kernels
// decode with the very functions the CPU reference uses. The *Ref functions
// (in trellis_code.cc) are host-only oracles written straight from the
// definitions below, for tests.
//
// ---------------------------------------------------------------------------
// Bitstream. N = T·k bits, stored in StreamBytes(T, k) = ceil(N / 8) bytes,
// LSB-first: stream bit i is bit (i mod 8) of byte i / 8 (as in
// common/packed/bitpack.h). Padding bits of the last byte are written as 0
// by the encoder and ignored by the decoder. Code c_t (k bits) is stream bits
// [t·k, t·k + k), bit t·k being its least significant bit — the same layout
// as PackCodes(codes, k), so the stream may equally be viewed as T k-bit
// codes.
//
// State. The stream is read cyclically (tail-biting: no bits are spent on a
// start state). The state of step t is the L-bit window ending with c_t:
//
//   W_t = Σ_{b=0}^{L-1} bit((t·k + k − L + b) mod N) · 2^b,   0 ≤ t < T,
//
// i.e. the window [t·k + k − L, t·k + k) read LSB-first, its oldest bit
// being bit 0 and c_t its top k bits. Hence the shift register recursion
//
//   W_t = (W_{t−1} >> k) | (c_t << (L − k)),   W_{−1} ≡ W_{T−1},
//
// and the "overlap" W_0 mod 2^(L−k) equals W_{T−1} >> k: the last L − k
// stream bits. The definition holds for any T ≥ 1 (a window longer than the
// stream simply wraps more than once), though real sequences have N ≫ L.
//
// Codebook ("1MAD"-style, one multiply-add). With h = (A·W + B) mod 2^32 and
// S(W) = the sum of the four bytes of h (an integer in 0..1020, roughly
// Gaussian: a sum of four nearly independent uniform bytes),
//
//   V_L(W) = (float(S(W)) − mean_L) · inv_std_L          (float arithmetic)
//
// where mean_L and inv_std_L are float roundings of the exact mean and
// 1/standard deviation of S over all 2^L states (from the integer moments
// in MomentsFor, which the tests recompute). So over all states V_L has
// mean 0 and variance 1 up to float rounding. The decoded weight is
// `scale * V_L(W_t)` (one float multiply). No operation here can be
// contracted into an FMA, so the CPU and a GPU decode bit-identically.
// ---------------------------------------------------------------------------
#pragma once

#include <math.h>
#include <stdint.h>

#include "common/base/host_device.h"

namespace glvq::trellis {

// Supported shapes: 1 ≤ k ≤ 4 bits per weight, k ≤ L ≤ 20 state bits.
// (L = k is a degenerate trellis: a scalar codebook of 2^k random levels.)
inline constexpr int kMinK = 1;
inline constexpr int kMaxK = 4;
inline constexpr int kMaxL = 20;

// The hash's multiply-add constants (odd multiplier: a bijection of 2^32).
// The code's quality depends on them (at L = 8, k = 2, plain constants such
// as 0x9E3779B1 gave MSE 0.146 against 0.083–0.091 for typical random
// ones): this pair was among the best 5 of 40 random candidates on Gaussian
// MSE at L = 10, k = 2..4, and the most consistent of those on fresh data
// at L = 8..14, k = 2..4. An
// extra xor-shift mix (h ^= h >> 15 or 16) made the best pairs worse, not
// better, so the hash stays a single multiply-add.
inline constexpr uint32_t kHashMul = 0x2CA1C789u;
inline constexpr uint32_t kHashAdd = 0x9C9CEA0Cu;

// True when (L, k) is a supported shape.
GLVQ_HOST_DEVICE inline bool ValidShape(int L, int k) {
  return k >= kMinK && k <= kMaxK && L >= k && L <= kMaxL;
}

// Bytes of a stream of T weights at k bits: ceil(T·k / 8). T ≥ 0.
GLVQ_HOST_DEVICE inline int64_t StreamBytes(int64_t T, int k) {
  return (T * k + 7) / 8;
}

// S(W): the sum of the four bytes of A·W + B mod 2^32 (0..1020).
GLVQ_HOST_DEVICE inline uint32_t StateByteSum(uint32_t state) {
  const uint32_t h = state * kHashMul + kHashAdd;
  return (h & 0xFFu) + ((h >> 8) & 0xFFu) + ((h >> 16) & 0xFFu) + (h >> 24);
}

// Exact integer moments of S over the 2^L states: Σ S and Σ S².
struct CodebookMoments {
  uint64_t sum = 0;
  uint64_t sum_sq = 0;
};

// The moments for L in 1..kMaxL (zeros otherwise), precomputed from
// StateByteSum and checked by tests/unit/trellis_test.cc against
// ComputeMomentsRef. A switch of literals rather than an array so that
// device code needs no __constant__ table.
GLVQ_HOST_DEVICE inline CodebookMoments MomentsFor(int L) {
  switch (L) {
    case 1: return {1147u, 658285u};
    case 2: return {2162u, 1198710u};
    case 3: return {4052u, 2242400u};
    case 4: return {7780u, 4121512u};
    case 5: return {16057u, 8835897u};
    case 6: return {32314u, 17796478u};
    case 7: return {64920u, 35713420u};
    case 8: return {130498u, 72001544u};
    case 9: return {261077u, 144153931u};
    case 10: return {522221u, 288350867u};
    case 11: return {1044451u, 575677573u};
    case 12: return {2088681u, 1152946027u};
    case 13: return {4177756u, 2307740750u};
    case 14: return {8355548u, 4618608768u};
    case 15: return {16711750u, 9236684212u};
    case 16: return {33423054u, 18474762582u};
    case 17: return {66846620u, 36955521682u};
    case 18: return {133692986u, 73909004612u};
    case 19: return {267386993u, 147818023055u};
    case 20: return {534773733u, 295640004893u};
    default: return {};
  }
}

// The affine map S ↦ V of one L: V = (float(S) − mean) · inv_std.
struct CodebookNorm {
  float mean = 0.0f;
  float inv_std = 1.0f;
};

// mean_L and inv_std_L: the exact mean and 1/σ of S over 2^L states, each
// rounded once to float. The variance is formed exactly in integers
// (n²·var = n·ΣS² − (ΣS)² < 2^63 for L ≤ 20), then scaled by a power of two,
// square-rooted and inverted — correctly rounded steps with no a·b + c that
// a compiler could fuse, so CPUs and GPUs get the same two floats.
GLVQ_HOST_DEVICE inline CodebookNorm NormFor(int L) {
  const CodebookMoments m = MomentsFor(L);
  const uint64_t n = uint64_t{1} << L;
  const uint64_t n2_var = m.sum_sq * n - m.sum * m.sum;
  const double var = ldexp(static_cast<double>(n2_var), -2 * L);
  const double mean = ldexp(static_cast<double>(m.sum), -L);  // exact: ΣS < 2^53
  return {static_cast<float>(mean), static_cast<float>(1.0 / sqrt(var))};
}

// V_L(W) for a state W < 2^L, given norm = NormFor(L). Unit variance over
// all states; values lie within about ±3.5.
GLVQ_HOST_DEVICE inline float CodebookValue(uint32_t state, CodebookNorm norm) {
  return (static_cast<float>(StateByteSum(state)) - norm.mean) * norm.inv_std;
}

// `count` (0..32) bits of a stream of n_bits > 0 bits, starting at bit
// `pos` and wrapping from bit n_bits − 1 to bit 0 (pos may be any integer,
// it is reduced mod n_bits); the first bit read is bit 0 of the result.
// Reads whole bytes within [0, ceil(n_bits / 8)) only.
GLVQ_HOST_DEVICE inline uint32_t ReadBitsCyclic(const uint8_t* stream, int64_t n_bits,
                                                int64_t pos, int count) {
  pos %= n_bits;
  if (pos < 0) pos += n_bits;
  uint32_t value = 0;
  for (int got = 0; got < count;) {
    const int in_byte = 8 - static_cast<int>(pos & 7);
    const int64_t to_end = n_bits - pos;
    int take = count - got;
    if (take > in_byte) take = in_byte;
    if (take > to_end) take = static_cast<int>(to_end);
    const uint32_t bits = (uint32_t(stream[pos >> 3]) >> (pos & 7)) & ((1u << take) - 1u);
    value |= bits << got;
    got += take;
    pos += take;
    if (pos == n_bits) pos = 0;
  }
  return value;
}

// W_t, by random access (for a kernel that decodes weight t on its own):
// the window [t·k + k − L, t·k + k) of the cyclic stream of T·k bits.
GLVQ_HOST_DEVICE inline uint32_t StateAt(const uint8_t* stream, int64_t T, int L, int k,
                                         int64_t t) {
  return ReadBitsCyclic(stream, T * k, t * k + k - L, L);
}

// Decodes T ≥ 1 weights of a stream of StreamBytes(T, k) bytes into
// out[0..T): out[t] = scale · V_L(W_t). Sequential: one window read, then
// the shift register recursion. The caller owns both buffers; (L, k) must
// satisfy ValidShape (not checked). Bit-identical to DecodeSequenceRef.
GLVQ_HOST_DEVICE inline void DecodeSequence(const uint8_t* stream, int64_t T, int L, int k,
                                            float scale, float* out) {
  const CodebookNorm norm = NormFor(L);
  const int64_t n_bits = T * k;
  uint32_t state = StateAt(stream, T, L, k, -1);  // W_{−1} = W_{T−1}
  for (int64_t t = 0; t < T; ++t) {
    const uint32_t code = ReadBitsCyclic(stream, n_bits, t * k, k);
    state = (state >> k) | (code << (L - k));
    out[t] = scale * CodebookValue(state, norm);
  }
}

// ----- Host-only oracles (trellis_code.cc) ---------------------------------

// Σ S and Σ S² over the 2^L states, by enumeration. 1 ≤ L ≤ kMaxL.
CodebookMoments ComputeMomentsRef(int L);

// DecodeSequence's contract, computed bit by bit from the window definition
// (no shift register, no multi-bit reads).
void DecodeSequenceRef(const uint8_t* stream, int64_t T, int L, int k, float scale,
                       float* out);

}  // namespace glvq::trellis
