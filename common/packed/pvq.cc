#include "common/packed/pvq.h"

#include <algorithm>
#include <bit>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/packed/wide_uint.h"

namespace glvq::pvq {
namespace {

// Counting beyond kMaxIndexBits saturates at 2^kMaxIndexBits: one spare
// word holds three saturated summands without wrapping.
using Saturating = WideUint<kMaxIndexWords + 1>;

Saturating Saturate(Saturating v) {
  if (v.w[kMaxIndexWords] == 0) return v;
  Saturating cap;
  cap.w[kMaxIndexWords] = 1;
  return cap;
}

// Bits of v (0 for v == 0).
int BitLength(const uint64_t* v, int words) {
  for (int i = words - 1; i >= 0; --i) {
    if (v[i] != 0) return 64 * i + static_cast<int>(std::bit_width(v[i]));
  }
  return 0;
}

int WordsFor(int bits) { return static_cast<int>(std::bit_ceil(static_cast<unsigned>((bits + 63) / 64))); }

}  // namespace

absl::StatusOr<PyramidSize> CountPyramid(int dim, int pulses) {
  if (dim < 1 || dim > kMaxDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("pvq dimension D must be within 1..", kMaxDim, ", got ", dim));
  }
  if (pulses < 1 || pulses > kMaxPulses) {
    return absl::InvalidArgumentError(
        absl::StrCat("pvq pulses K must be within 1..", kMaxPulses, ", got ", pulses));
  }
  const size_t k1 = static_cast<size_t>(pulses) + 1;
  std::vector<Saturating> prev(k1), row(k1);
  prev[0].w[0] = 1;  // N(0, 0) = 1, N(0, k ≥ 1) = 0
  for (int n = 1; n <= dim; ++n) {
    row[0] = Saturating();
    row[0].w[0] = 1;
    for (size_t k = 1; k < k1; ++k) row[k] = Saturate(prev[k] + prev[k - 1] + row[k - 1]);
    std::swap(prev, row);
  }
  const Saturating& n = prev[pulses];
  if (n.w[kMaxIndexWords] != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pvq index of N(D=", dim, ", K=", pulses, ") needs more than ", kMaxIndexBits,
        " bits (the supported maximum); lower the bits per weight or the dimension"));
  }
  PyramidSize size;
  std::copy(n.w.begin(), n.w.begin() + kMaxIndexWords, size.count.begin());
  Saturating minus_one = n - Saturating{{1}};
  size.index_bits = BitLength(minus_one.w.data(), kMaxIndexWords);
  return size;
}

PulseLimit LargestPulses(int dim, int max_index_bits) {
  // prev[n] = N(n, k − 1), col[n] = N(n, k) for n = 0..dim.
  std::vector<Saturating> prev(static_cast<size_t>(dim) + 1, Saturating{{1}}), col(prev.size());
  PulseLimit limit;
  for (int k = 1;; ++k) {
    col[0] = Saturating();
    for (size_t n = 1; n < col.size(); ++n) col[n] = Saturate(col[n - 1] + prev[n - 1] + prev[n]);
    const bool over = col.back().w[kMaxIndexWords] != 0;
    const Saturating minus_one = col.back() - Saturating{{1}};
    const int bits = over ? kMaxIndexBits + 1 : BitLength(minus_one.w.data(), kMaxIndexWords);
    if (bits > max_index_bits) return limit;
    if (over || k > kMaxPulses) {
      limit.capped = true;
      return limit;
    }
    limit.pulses = k;
    limit.index_bits = bits;
    std::swap(prev, col);
  }
}

absl::StatusOr<Enumeration> Enumeration::Create(int dim, int pulses) {
  auto size = CountPyramid(dim, pulses);
  if (!size.ok()) return size.status();
  Enumeration e(dim, pulses, size->index_bits,
                WordsFor(BitLength(size->count.data(), kMaxIndexWords)));
  e.BuildTables();
  return e;
}

Enumeration::Enumeration(int dim, int pulses, int index_bits, int words)
    : dim_(dim), pulses_(pulses), index_bits_(index_bits), words_(words) {}

// Every entry is at most N(dim, pulses) < 2^(64·words): N grows in both
// arguments and P(n, k) = (N(n+1, k) + N(n, k)) / 2 ≤ N(n+1, k).
void Enumeration::BuildTables() {
  using U = WideUint<kMaxIndexWords>;
  const size_t entries = static_cast<size_t>(dim_ + 1) * static_cast<size_t>(pulses_ + 1);
  counts_.assign(entries * static_cast<size_t>(words_), 0);
  prefixes_.assign(entries * static_cast<size_t>(words_), 0);
  std::vector<U> prev(static_cast<size_t>(pulses_) + 1), row(prev.size());
  prev[0].w[0] = 1;
  for (int n = 0; n <= dim_; ++n) {
    if (n > 0) {
      row[0] = U{{1}};
      for (size_t k = 1; k < row.size(); ++k) row[k] = prev[k] + prev[k - 1] + row[k - 1];
      std::swap(prev, row);
    }
    U prefix;
    for (int k = 0; k <= pulses_; ++k) {
      prefix = prefix + prev[k];
      std::copy_n(prev[k].w.begin(), words_, &counts_[Slot(n, k)]);
      std::copy_n(prefix.w.begin(), words_, &prefixes_[Slot(n, k)]);
    }
  }
}

template <int W>
void Enumeration::EncodeW(const int32_t* y, uint64_t* index) const {
  using U = WideUint<W>;
  auto count = [&](int n, int k) { return U::Load(&counts_[Slot(n, k)]); };
  auto prefix = [&](int n, int k) { return U::Load(&prefixes_[Slot(n, k)]); };
  U idx;
  int k = pulses_;
  for (int i = 0; i < dim_ && k > 0; ++i) {
    const int v = y[i];
    if (v == 0) continue;
    const int n = dim_ - 1 - i, a = std::abs(v);
    // Skips the vectors with 0, ±1, …, ±(a−1) here, then +a if v < 0:
    // N(n,k) + 2·Σ_{j=1}^{a−1} N(n,k−j) [+ N(n,k−a)].
    idx = idx + count(n, k) + (prefix(n, k - 1) - prefix(n, k - a)).Doubled();
    if (v < 0) idx = idx + count(n, k - a);
    k -= a;
  }
  idx.Store(index);
}

template <int W>
void Enumeration::DecodeW(const uint64_t* index, int32_t* y) const {
  using U = WideUint<W>;
  auto count = [&](int n, int k) { return U::Load(&counts_[Slot(n, k)]); };
  auto prefix = [&](int n, int k) { return k < 0 ? U() : U::Load(&prefixes_[Slot(n, k)]); };
  U idx = U::Load(index);
  int k = pulses_;
  for (int i = 0; i < dim_; ++i) {
    y[i] = 0;
    if (k == 0) continue;
    const int n = dim_ - 1 - i;
    const U zero_count = count(n, k);
    if (idx < zero_count) continue;
    idx = idx - zero_count;
    // Vectors with |y_i| in 1..a at this position: T(a) = 2·(P(n,k−1) −
    // P(n,k−1−a)), increasing in a. Find the least a with idx < T(a) by
    // galloping then bisection: O(log |y_i|) steps, O(log K) at worst.
    const U top = prefix(n, k - 1);
    auto below = [&](int a) { return idx < (top - prefix(n, k - 1 - a)).Doubled(); };
    int lo = 1, hi = 1;
    while (hi < k && !below(hi)) {
      lo = hi + 1;
      hi = std::min(2 * hi, k);
    }
    while (lo < hi) {
      const int mid = lo + (hi - lo) / 2;
      if (below(mid)) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    const int a = lo;
    idx = idx - (top - prefix(n, k - a)).Doubled();
    const U plus = count(n, k - a);
    if (idx < plus) {
      y[i] = a;
    } else {
      y[i] = -a;
      idx = idx - plus;
    }
    k -= a;
  }
}

void Enumeration::Encode(const int32_t* y, uint64_t* index) const {
  switch (words_) {
    case 1: return EncodeW<1>(y, index);
    case 2: return EncodeW<2>(y, index);
    case 4: return EncodeW<4>(y, index);
    default: return EncodeW<8>(y, index);
  }
}

void Enumeration::Decode(const uint64_t* index, int32_t* y) const {
  switch (words_) {
    case 1: return DecodeW<1>(index, y);
    case 2: return DecodeW<2>(index, y);
    case 4: return DecodeW<4>(index, y);
    default: return DecodeW<8>(index, y);
  }
}

bool Enumeration::InRange(const uint64_t* index) const {
  const uint64_t* n = Count(dim_, pulses_);
  for (int i = words_ - 1; i >= 0; --i) {
    if (index[i] != n[i]) return index[i] < n[i];
  }
  return false;
}

void PutBits(uint8_t* stream, uint64_t pos, uint64_t value, int bits) {
  while (bits > 0) {
    const int shift = static_cast<int>(pos & 7);
    const int take = std::min(8 - shift, bits);
    const uint64_t mask = (uint64_t{1} << take) - 1;
    stream[pos >> 3] = static_cast<uint8_t>(stream[pos >> 3] | ((value & mask) << shift));
    value >>= take;
    pos += static_cast<uint64_t>(take);
    bits -= take;
  }
}

uint64_t GetBits(const uint8_t* stream, uint64_t pos, int bits) {
  uint64_t value = 0;
  int done = 0;
  while (done < bits) {
    const int shift = static_cast<int>(pos & 7);
    const int take = std::min(8 - shift, bits - done);
    const uint64_t part = (static_cast<uint64_t>(stream[pos >> 3]) >> shift) &
                          ((uint64_t{1} << take) - 1);
    value |= part << done;
    pos += static_cast<uint64_t>(take);
    done += take;
  }
  return value;
}

void PutIndex(uint8_t* stream, uint64_t pos, const uint64_t* index, int bits) {
  for (int i = 0; 64 * i < bits; ++i) {
    PutBits(stream, pos + 64 * static_cast<uint64_t>(i), index[i], std::min(64, bits - 64 * i));
  }
}

void GetIndex(const uint8_t* stream, uint64_t pos, int bits, int words, uint64_t* index) {
  for (int i = 0; i < words; ++i) {
    const int take = std::clamp(bits - 64 * i, 0, 64);
    index[i] = take == 0 ? 0 : GetBits(stream, pos + 64 * static_cast<uint64_t>(i), take);
  }
}

}  // namespace glvq::pvq
