#include "common/packed/trellis_code.h"

namespace glvq::trellis {

CodebookMoments ComputeMomentsRef(int L) {
  CodebookMoments m;
  for (uint32_t state = 0; state < (1u << L); ++state) {
    const uint64_t s = StateByteSum(state);
    m.sum += s;
    m.sum_sq += s * s;
  }
  return m;
}

void DecodeSequenceRef(const uint8_t* stream, int64_t T, int L, int k, float scale,
                       float* out) {
  const int64_t n_bits = T * k;
  const CodebookNorm norm = NormFor(L);
  for (int64_t t = 0; t < T; ++t) {
    uint32_t state = 0;
    for (int b = 0; b < L; ++b) {
      // ((x mod n) + n) mod n: the window's first bits precede bit 0 at t = 0.
      const int64_t i = ((t * k + k - L + b) % n_bits + n_bits) % n_bits;
      const uint32_t bit = (stream[i / 8] >> (i % 8)) & 1u;
      state |= bit << b;
    }
    out[t] = scale * CodebookValue(state, norm);
  }
}

}  // namespace glvq::trellis
