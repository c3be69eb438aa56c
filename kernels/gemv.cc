#include "kernels/gemv.h"

#include <algorithm>
#include <array>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/packed/layout.h"
#include "common/packed/hadamard.h"

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

}  // namespace

bool HasFastGemv(const QuantizedTensor& w) { return w.method == kMethodRtn; }

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
    RtnGemv(w, x.data(), y.data());
    return absl::OkStatus();
  }
  // W x = T_mᵀ (W̃ (T_n x)): two O(n log n) transforms instead of W's.
  std::vector<double> xd(x.begin(), x.end());
  RandomizedHadamard(w.cols, static_cast<uint64_t>(w.rht_seed[1])).Apply(xd);
  const std::vector<float> xt(xd.begin(), xd.end());
  std::vector<float> yt(static_cast<size_t>(w.rows));
  RtnGemv(w, xt.data(), yt.data());
  std::vector<double> yd(yt.begin(), yt.end());
  RandomizedHadamard(w.rows, static_cast<uint64_t>(w.rht_seed[0])).ApplyInverse(yd);
  std::copy(yd.begin(), yd.end(), y.begin());
  return absl::OkStatus();
}

}  // namespace glvq::kernels
