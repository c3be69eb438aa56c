// Encoder of the "trellis" method (bitshift trellis-coded quantization in
// the spirit of QTIP, Tseng et al. 2024): finds the cyclic bitstream of T·k
// bits whose decoded values (common/packed/trellis_code.h, which defines the
// stream, state and codebook conventions) minimize the weighted squared
// error Σ_t w_t (x_t − scale · V_L(W_t))².
//
// Search. A Viterbi search over the 2^L states. In a bitshift trellis the
// 2^k states that share their L − k older bits also share their 2^k
// predecessors, so one step costs O(2^L) (one min over 2^k candidates per
// group of 2^k successors), not O(2^L · 2^k).
//
// Internal state order. The search indexes a state by R = bitreverse_L(W)
// (W as defined in trellis_code.h), so that W_t = (W_{t−1} >> k) | (c << (L−k))
// becomes R_t = ((R_{t−1} << k) | rev_k(c)) mod 2^L. Then the successors of
// group g = R >> k are R = g·2^k + r (r < 2^k, contiguous) and its
// predecessors are g + j·2^(L−k) (j < 2^k): the min over predecessors is an
// element-wise min of 2^k contiguous arrays of G = 2^(L−k) costs, and the
// successor costs are written contiguously. Both vectorize (see
// ViterbiMinBlock and ViterbiExpandBlock below); the reversal is confined
// to the value table and the traceback.
//
// Tail-biting, two-pass approximation. The stream is read cyclically, so a
// path is admissible only if its start overlap (W_0 mod 2^(L−k)) equals the
// end's (W_{T−1} >> k). The exact search runs one constrained Viterbi per
// overlap value: 2^(L−k) times the work. Instead (as QTIP does):
//   pass 1: an unconstrained Viterbi over original steps T − 1 − D …
//           T − 1 + D, read cyclically, D = max(T/2, 8·⌈L/k⌉) by default
//           (for T = 256 and L ≤ 16: D = T/2, i.e. the sequence rotated by
//           half; see the constructor for a shorter, faster D); the
//           survivor through the middle step T − 1 no longer depends on the
//           free ends, and its state there gives the overlap o = W_{T−1} >> k;
//   pass 2: a Viterbi on the original sequence with start and end forced to
//           overlap o. Its path is admissible, and is what gets stored.
// Quality (tests/unit/trellis_test.cc and offline measurements): for
// T·k ≥ 16·L the result is the exact tail-biting optimum in nearly all
// sequences (all ~290 measured at T = 256, L = 8 and 10, k = 2–4; worst
// seen 1.5 % above it at T·k = 16·L). Shorter sequences are still encoded
// admissibly, but the overlap guess degrades (T·k ≈ 2L: tens of % on
// average). The free pass (both overlaps unconstrained, ViterbiPass) is a
// lower bound; it sits 1–5 % below the tail-biting optimum at T = 256 —
// the worth of L − k unstored start bits, not an approximation loss — and
// the tail-biting MSE itself is the same at T = 256 and T = 1024.
//
// Measured MSE on 256×1024 i.i.d. N(0, 1) (scale = GaussianScaleRatio ·
// RMS(row), T = 256, default context; rate–distortion limits 0.0625,
// 0.0156, 0.0039), and encode speed in M weights/s on one core of a
// 2-core AMD EPYC (g++ -O2, SSE2; busy machine, ±20 %) at T = 256 default
// → T = 1024 with pass1_context = 8·⌈L/k⌉ (same MSE within 0.3 %):
//
//   L    k = 2    k = 3    k = 4     speed, k = 2
//   8    0.0840   0.0227   0.00653   4.3 → 8.3
//   10   0.0791   0.0205   0.00540   1.05 → 1.9
//   12   0.0730   0.0187   0.00500   0.29 → 0.46
//   14   0.0707   0.0180   0.00466   0.067 → 0.10
//   16   0.0689   0.0175   0.00451   0.014 → 0.02
//
// Exactness. Costs are accumulated in float inside the search (vectorizes,
// and is what a GPU port would do); the returned cost is recomputed in
// double from the stored stream with the decoder's own float values, so it
// equals Σ w (x − DecodeSequence(...))² evaluated in double, exactly.
//
// Memory per encoder: 4 · 2^L floats (unit and scaled value tables, two
// cost rows) + 2^(L−k) floats + 4 · 2^L bytes (R → W) + max(T, 2D + 1) ·
// 2^(L−k) bytes of traceback (L = 16, k = 2: 1.3 MB + 4.2 MB at T = 256,
// 1.3 MB + 16.8 MB at T = 1024). Time: (T + 2D + 1) · 2^L state updates (two
// passes), measured at 0.4–0.55 ns each on the machine above (L = 8…16).
#pragma once

#include <stdint.h>

#include <vector>

#include "common/base/host_device.h"
#include "common/packed/trellis_code.h"

namespace glvq::cpu {

// ----- Device-safe per-step kernels -----------------------------------------
//
// One Viterbi step t, K = k bits per step, G = 2^(L−K) groups, in two
// halves so that each is a plain lane-wise loop:
//
//   ViterbiMinBlock:    best[g] = min_j prev[g + j·G],  back[g] = argmin j
//                       (ties: the smallest j), for g in [g0, g0 + B);
//   ViterbiExpandBlock: next[g·2^K + r] = best[g] + w · (x − values[g·2^K + r])²
//                       for g in [g0, g0 + B), r < 2^K;
//
// with prev/next the costs of steps t − 1 / t by R (2^L floats each), best
// G floats, back G bytes (the step's traceback row), values[R] = scale ·
// V_L(bitreverse_L(R)) (2^L floats), x and w the target and weight of step t.
// The caller owns all buffers; they must not overlap.
//
// The block size B is a compile-time constant so that the loops have a
// known trip count: the CPU uses B = 16 (whole SSE/AVX vectors even under
// GCC's -O2 "very cheap" vectorizer, which will not emit scalar epilogues);
// a GPU port calls them with B = 1, one group per thread. The selects are
// written with masks because a branchy argmin neither vectorizes nor
// predicts (the comparisons are coin flips).
#if defined(__CUDACC__)
#define GLVQ_TRELLIS_UNROLL _Pragma("unroll")
#else
#define GLVQ_TRELLIS_UNROLL _Pragma("GCC unroll 16")
#endif

template <int K, int B>
GLVQ_HOST_DEVICE inline void ViterbiMinBlock(const float* __restrict__ prev,
                                             float* __restrict__ best,
                                             uint8_t* __restrict__ back, int64_t G,
                                             int64_t g0) {
  for (int i = 0; i < B; ++i) {
    const int64_t g = g0 + i;
    float min_cost = prev[g];
    int32_t arg = 0;
    GLVQ_TRELLIS_UNROLL
    for (int j = 1; j < (1 << K); ++j) {
      const float c = prev[g + j * G];
      const int32_t take = -static_cast<int32_t>(c < min_cost);  // all ones or 0
      min_cost = c < min_cost ? c : min_cost;
      arg = (arg & ~take) | (j & take);
    }
    best[g] = min_cost;
    back[g] = static_cast<uint8_t>(arg);
  }
}

template <int K, int B>
GLVQ_HOST_DEVICE inline void ViterbiExpandBlock(const float* __restrict__ best,
                                                float* __restrict__ next,
                                                const float* __restrict__ values, float x,
                                                float w, int64_t g0) {
  constexpr int kFan = 1 << K;
  for (int i = 0; i < B; ++i) {
    // One group's 2^K successors are contiguous: with K ≥ 2 they are whole
    // vectors and best[g] a broadcast. (Unrolling this loop instead lets
    // GCC vectorize across groups, which costs shuffles to interleave.)
    const float base = best[g0 + i];
    const float* v = values + (g0 + i) * kFan;
    float* out = next + (g0 + i) * kFan;
    for (int r = 0; r < kFan; ++r) {
      const float d = x - v[r];
      out[r] = base + w * d * d;
    }
  }
}

// ----- Host encoder -----------------------------------------------------------

// What one Encode call found.
struct TrellisEncodeStats {
  double cost = 0;       // Σ w (x − decoded)² of the stored stream
  uint32_t overlap = 0;  // W_0 mod 2^(L−k): the stream's last L − k bits
};

// A reusable encoder for one shape (L, k): holds the codebook in search
// order and the search's workspace, so repeated calls do not allocate.
// Not thread-safe: use one encoder per thread.
class TrellisEncoder {
 public:
  // (L, k) must satisfy trellis::ValidShape; otherwise std::abort().
  // pass1_context: Encode's pass-1 context D (steps each side of the step
  // whose state sets the overlap). 0 = auto: max(T/2, 8·⌈L/k⌉), which was
  // exact in all measured T = 256 sequences. A fixed D = 8·⌈L/k⌉ shortens
  // pass 1 (L = 12, k = 2: 97 steps instead of T + 1) for +0.1–1.3 % MSE
  // at T = 256 (exact in 70–85 % of sequences) but only +0.1–0.3 % at
  // T = 1024, where it makes Encode ≈ 1.6× faster: the fastest setting for
  // a given MSE.
  explicit TrellisEncoder(int L, int k, int64_t pass1_context = 0);

  int L() const { return L_; }
  int k() const { return k_; }

  // Two-pass tail-biting encode of x[0..T) with weights weight[0..T)
  // (nullptr: all 1; weights ≥ 0, all inputs finite) at value scale `scale`
  // (decoded weight = scale · V_L; scale ≥ 0). Requires T·k ≥ L (so that
  // every overlap value is realizable; otherwise std::abort()), and T·k ≥
  // 16·L for a near-exact tail-biting search. Writes trellis::StreamBytes(T, k)
  // bytes to stream_out (padding bits 0) and returns Σ w (x − decoded)²,
  // computed in double. Deterministic: same inputs, same bytes.
  double Encode(const float* x, const float* weight, int64_t T, float scale,
                uint8_t* stream_out, TrellisEncodeStats* stats = nullptr);

  // One Viterbi pass (the building block; exposed for tests and for
  // callers that want other tail strategies). Step u = 0..num_steps−1 of
  // the pass codes x[(first + u) mod T] (0 ≤ first < T, num_steps ≥ 1; a
  // pass longer than T wraps around the sequence again). If
  // start_overlap ≥ 0, the first state must have W mod 2^(L−k) ==
  // start_overlap (i.e. the L − k bits before the pass are fixed); if
  // end_overlap ≥ 0, the last state must have W >> k == end_overlap.
  // Negative: unconstrained. Writes the optimal path's states W (the
  // decoder's convention) to states_out[0..num_steps) and returns its cost
  // as accumulated in float. If no path meets the constraints (possible only
  // when (num_steps − 1)·k < L − k) the returned cost is +inf.
  //
  // With first = 0, num_steps = T: both overlaps fixed to o is the exact
  // optimum among cyclic streams whose last L − k bits are o (so the exact
  // tail-biting optimum is the best of the 2^(L−k) such passes); both free
  // is a lower bound on it.
  float ViterbiPass(const float* x, const float* weight, int64_t T, float scale,
                    int64_t first, int64_t num_steps, int64_t start_overlap,
                    int64_t end_overlap, uint32_t* states_out);

 private:
  int64_t Pass1Context(int64_t T) const;
  void PrepareValues(float scale);
  void InitialCosts(float x, float w, int64_t start_overlap);
  void ForwardStep(float x, float w, uint8_t* back);
  uint32_t BestFinalState(int64_t end_overlap) const;
  double ExactCost(const float* x, const float* weight, int64_t T, float scale,
                   const uint32_t* states) const;

  int L_, k_;
  int64_t pass1_context_;              // 0: auto
  int64_t num_states_, num_groups_;    // 2^L, G = 2^(L−k)
  trellis::CodebookNorm norm_;
  std::vector<uint32_t> reverse_;      // R → W = bitreverse_L(R)
  std::vector<float> unit_values_;     // V_L(W) by R
  std::vector<float> values_;          // scale · V_L(W) by R (current scale)
  std::vector<float> cost_, next_cost_;
  std::vector<float> best_;            // G per-group minima of one step
  std::vector<uint8_t> back_;          // traceback: row u (G bytes) for pass step u
  std::vector<uint32_t> path_;         // one pass's states W
};

// One-shot convenience: TrellisEncoder(L, k).Encode(...). Allocates.
double EncodeSequence(const float* x, const float* weight, int64_t T, int L, int k,
                      float scale, uint8_t* stream_out);

// ----- Scale choice -----------------------------------------------------------------
//
// The codebook has unit variance, but the MSE-optimal value scale is not the
// data's RMS: the ratio scale / RMS is ≈ 0.875 at 1 bit, and 1.03–1.25 at
// 2–4 bits, shrinking toward 1 as L grows (GaussianScaleRatio). Measured on
// 256×1024 i.i.d. N(0, 1), T = 256:
//   - one global ratio per (L, k), scale = ratio · RMS(row): the baseline;
//   - a per-sequence search over ratio · RMS(sequence) · {0.94, 0.97, 1,
//     1.03, 1.06} (5× the encode time) lowers the MSE by 1.4 % (k = 2) to
//     4–6 % (k = 4) (k = 2, L = 12: 0.0730 → 0.0720), less than L + 2 gives
//     at 4× the time, and a per-sequence scale costs storage. So the default
//     is the global ratio; EncodeWithScaleSearch is there for callers who
//     want the rest.

// The best ratio scale / RMS(data) measured on Gaussian data for (L, k)
// (0.025 grid; an odd L takes the row of L − 1; L < 8 that of 8, L > 16
// that of 16). (L, k) must be ValidShape.
float GaussianScaleRatio(int L, int k);

struct ScaleSearchResult {
  float scale = 0;  // the winning candidate
  double cost = 0;  // its Encode cost
};

// Encodes x with each of scales[0..num_scales) (num_scales ≥ 1) and keeps
// the cheapest (the first on ties): its stream is left in stream_out
// (StreamBytes(T, k) bytes). Cost: num_scales encodes. Other arguments as
// in TrellisEncoder::Encode.
ScaleSearchResult EncodeWithScaleSearch(TrellisEncoder& encoder, const float* x,
                                        const float* weight, int64_t T,
                                        const float* scales, int num_scales,
                                        uint8_t* stream_out);

}  // namespace glvq::cpu
