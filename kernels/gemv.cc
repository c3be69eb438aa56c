#include "kernels/gemv.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/packed/e8p.h"
#include "common/packed/hadamard.h"
#include "common/packed/layout.h"

namespace glvq::kernels {
namespace {

absl::Status CheckSizes(const QuantizedTensor& w, std::span<const float> x, std::span<float> y) {
  if (static_cast<int64_t>(x.size()) != w.cols || static_cast<int64_t>(y.size()) != w.rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        w.name, ": gemv of a ", w.rows, "x", w.cols, " weight with x of ", x.size(),
        " and y of ", y.size(), " elements"));
  }
  return absl::OkStatus();
}

// Per byte position of a group row: table[v] = Σ_i code_i(v) · x_i over the
// 8 / bits columns the byte v holds (LSB-first, docs/format.md §3).
template <int kBits>
void BuildTables(const float* x, int64_t width, std::vector<std::array<float, 256>>& tables) {
  constexpr int kPerByte = 8 / kBits, kMask = (1 << kBits) - 1;
  tables.resize(static_cast<size_t>(width / kPerByte));
  for (size_t b = 0; b < tables.size(); ++b) {
    const float* xs = x + b * kPerByte;
    std::array<float, 256>& t = tables[b];
    for (int v = 0; v < 256; ++v) {
      float sum = 0;
      for (int i = 0; i < kPerByte; ++i) sum += static_cast<float>((v >> (i * kBits)) & kMask) * xs[i];
      t[v] = sum;
    }
  }
}

// Σ_c code_c · x_c of each row of one rtn group, into dots[rows].
template <int kBits>
void GroupDotsLut(const uint8_t* stream, const float* x, int64_t rows, int64_t width,
                  std::vector<std::array<float, 256>>& tables, float* dots) {
  BuildTables<kBits>(x, width, tables);
  const int64_t row_bytes = width * kBits / 8;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* codes = stream + r * row_bytes;
    // Four partial sums: independent adds in flight.
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t b = 0;
    for (; b + 4 <= row_bytes; b += 4) {
      s0 += tables[b][codes[b]];
      s1 += tables[b + 1][codes[b + 1]];
      s2 += tables[b + 2][codes[b + 2]];
      s3 += tables[b + 3][codes[b + 3]];
    }
    for (; b < row_bytes; ++b) s0 += tables[b][codes[b]];
    dots[r] = (s0 + s1) + (s2 + s3);
  }
}

// Any width and bits: extract every code.
void GroupDotsPlain(const uint8_t* stream, const float* x, int64_t rows, int64_t width, int bits,
                    float* dots) {
  for (int64_t r = 0; r < rows; ++r) {
    float sum = 0;
    for (int64_t c = 0; c < width; ++c) {
      sum += static_cast<float>(packed::ExtractCode(stream, r * width + c, bits)) * x[c];
    }
    dots[r] = sum;
  }
}

// y = W̃ x for an rtn tensor (its stored basis).
void RtnGemv(const QuantizedTensor& w, const float* x, float* y) {
  std::vector<std::array<float, 256>> tables;
  std::vector<float> dots(static_cast<size_t>(w.rows));
  std::fill(y, y + w.rows, 0.0f);
  for (int64_t g = 0; g < w.NumGroups(); ++g) {
    const int64_t c0 = g * w.group_size, width = w.GroupWidth(g);
    const int bits = w.bits[g];
    const uint8_t* stream = w.codes.data() + w.offsets[g];
    const float* xg = x + c0;
    const bool aligned = (width * bits) % 8 == 0;
    if (aligned && bits == 2) {
      GroupDotsLut<2>(stream, xg, w.rows, width, tables, dots.data());
    } else if (aligned && bits == 4) {
      GroupDotsLut<4>(stream, xg, w.rows, width, tables, dots.data());
    } else {
      GroupDotsPlain(stream, xg, w.rows, width, bits, dots.data());
    }
    float x_sum = 0;
    for (int64_t c = 0; c < width; ++c) x_sum += xg[c];
    const float* scale = w.scale.data() + g * w.rows;
    const float* zero = w.zero.data() + g * w.rows;
    for (int64_t r = 0; r < w.rows; ++r) y[r] += scale[r] * (dots[r] - zero[r] * x_sum);
  }
}

// E8P (docs/format.md §4.3): codeword c = s ⊙ a + t·1, so
// c · x = Σ_i a_i (s_i x_i) + t Σ_i x_i. The abs vectors as floats and the
// sign patterns as XOR masks on x's sign bits come from tables; a codeword
// then costs eight lane-wise multiply-adds that GCC vectorises.
struct E8pTables {
  std::array<std::array<float, 8>, e8p::kNumAbs> abs;      // a (not doubled)
  std::array<uint32_t, e8p::kNumAbs> parity;               // Σ a_i mod 2, at bit 31
  std::array<std::array<uint32_t, 8>, 128> signs;          // coords 1–7 from f, coord 0 from popcount(f)
};

const E8pTables& E8p() {
  static const E8pTables* t = [] {
    auto* t = new E8pTables;
    for (int a = 0; a < e8p::kNumAbs; ++a) {
      for (int i = 0; i < 8; ++i) t->abs[a][i] = 0.5f * e8p::AbsTable()[a][i];
      t->parity[a] = static_cast<uint32_t>(e8p::AbsSumParity(a)) << 31;
    }
    for (int f = 0; f < 128; ++f) {
      t->signs[f][0] = static_cast<uint32_t>(__builtin_popcount(f) & 1) << 31;
      for (int j = 1; j < 8; ++j) t->signs[f][j] = static_cast<uint32_t>((f >> (j - 1)) & 1) << 31;
    }
    return t;
  }();
  return *t;
}

// y = W̃ x for an e8p tensor (its stored basis).
void E8pGemv(const QuantizedTensor& w, const float* x, float* y) {
  const E8pTables& t = E8p();
  std::fill(y, y + w.rows, 0.0f);
  std::vector<uint32_t> xbits;
  std::vector<float> block_sums;
  for (int64_t g = 0; g < w.NumGroups(); ++g) {
    const int64_t c0 = g * w.group_size, width = w.GroupWidth(g);
    const int64_t vectors = E8pVectorsPerRow(width);
    // x of the group as raw bits, zero-padded to whole codewords (a short
    // codeword's unused coordinates then add 0), and each block's sum.
    xbits.assign(static_cast<size_t>(vectors * 8), 0);
    std::memcpy(xbits.data(), x + c0, static_cast<size_t>(width) * sizeof(float));
    block_sums.assign(static_cast<size_t>(vectors), 0.0f);
    for (int64_t c = 0; c < width; ++c) block_sums[c / 8] += x[c0 + c];
    const uint8_t* stream = w.codes.data() + w.offsets[g];
    const float scale = w.scale[g];
    for (int64_t r = 0; r < w.rows; ++r) {
      float acc[8] = {}, shift = 0;
      for (int64_t v = 0; v < vectors; ++v) {
        const uint8_t* q = stream + 2 * (r * vectors + v);
        const int code = q[0] | (q[1] << 8);
        const int a = code & 0xFF, f = (code >> 8) & 0x7F;
        const float* abs = t.abs[a].data();
        const uint32_t* sign = t.signs[f].data();
        const uint32_t* xs = xbits.data() + v * 8;
        uint32_t flipped[8];
        for (int i = 0; i < 8; ++i) flipped[i] = xs[i] ^ sign[i];
        flipped[0] ^= t.parity[a];
        float xf[8];
        std::memcpy(xf, flipped, sizeof xf);
        for (int i = 0; i < 8; ++i) acc[i] += abs[i] * xf[i];
        shift += (code >> 15 ? 0.25f : -0.25f) * block_sums[v];
      }
      const float dot = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                        ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      y[r] += scale * (dot + shift);
    }
  }
}

// W̃ x by the method's kernel.
void StoredGemv(const QuantizedTensor& w, const float* x, float* y) {
  if (w.method == kMethodE8p) {
    E8pGemv(w, x, y);
  } else {
    RtnGemv(w, x, y);
  }
}

}  // namespace

bool HasFastGemv(const QuantizedTensor& w) {
  return w.method == kMethodRtn || w.method == kMethodE8p;
}

absl::Status GemvRef(const QuantizedTensor& w, std::span<const float> x, std::span<float> y) {
  RETURN_IF_ERROR(CheckSizes(w, x, y));
  std::vector<float> dense(static_cast<size_t>(w.rows * w.cols));
  RETURN_IF_ERROR(DequantizeRef(w, dense));
  for (int64_t r = 0; r < w.rows; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < w.cols; ++c) sum += double(dense[r * w.cols + c]) * double(x[c]);
    y[r] = static_cast<float>(sum);
  }
  return absl::OkStatus();
}

absl::Status Gemv(const QuantizedTensor& w, std::span<const float> x, std::span<float> y) {
  RETURN_IF_ERROR(CheckSizes(w, x, y));
  if (!HasFastGemv(w)) return GemvRef(w, x, y);
  RETURN_IF_ERROR(ValidateQuantizedTensor(w));
  if (w.rht_seed.empty()) {
    StoredGemv(w, x.data(), y.data());
    return absl::OkStatus();
  }
  // W x = T_mᵀ (W̃ (T_n x)): two O(n log n) transforms instead of W's.
  std::vector<double> xd(x.begin(), x.end());
  RandomizedHadamard(w.cols, static_cast<uint64_t>(w.rht_seed[1])).Apply(xd);
  const std::vector<float> xt(xd.begin(), xd.end());
  std::vector<float> yt(static_cast<size_t>(w.rows));
  StoredGemv(w, xt.data(), yt.data());
  std::vector<double> yd(yt.begin(), yt.end());
  RandomizedHadamard(w.rows, static_cast<uint64_t>(w.rht_seed[0])).ApplyInverse(yd);
  std::copy(yd.begin(), yd.end(), y.begin());
  return absl::OkStatus();
}

}  // namespace glvq::kernels
