// Fixed-width unsigned integers of W 64-bit words, least significant word
// first, for PVQ indices beyond 64 bits (common/packed/pvq.h): D = 64 at
// 2 bits per weight already needs ~119 bits. Only what the enumeration
// needs: add, subtract, double, compare. Arithmetic is modulo 2^(64·W);
// callers keep values in range (the counting tables bound every sum).
#pragma once

#include <array>
#include <cstdint>

namespace glvq::pvq {

template <int W>
struct WideUint {
  std::array<uint64_t, W> w{};

  static WideUint Load(const uint64_t* p) {
    WideUint r;
    for (int i = 0; i < W; ++i) r.w[i] = p[i];
    return r;
  }
  void Store(uint64_t* p) const {
    for (int i = 0; i < W; ++i) p[i] = w[i];
  }

  friend WideUint operator+(const WideUint& a, const WideUint& b) {
    WideUint r;
    bool carry = false;
    for (int i = 0; i < W; ++i) {
      uint64_t s;
      const bool c1 = __builtin_add_overflow(a.w[i], b.w[i], &s);
      const bool c2 = __builtin_add_overflow(s, uint64_t{carry}, &r.w[i]);
      carry = c1 || c2;
    }
    return r;
  }

  friend WideUint operator-(const WideUint& a, const WideUint& b) {
    WideUint r;
    bool borrow = false;
    for (int i = 0; i < W; ++i) {
      uint64_t d;
      const bool b1 = __builtin_sub_overflow(a.w[i], b.w[i], &d);
      const bool b2 = __builtin_sub_overflow(d, uint64_t{borrow}, &r.w[i]);
      borrow = b1 || b2;
    }
    return r;
  }

  WideUint Doubled() const {
    WideUint r;
    uint64_t carry = 0;
    for (int i = 0; i < W; ++i) {
      r.w[i] = (w[i] << 1) | carry;
      carry = w[i] >> 63;
    }
    return r;
  }

  friend bool operator<(const WideUint& a, const WideUint& b) {
    for (int i = W - 1; i >= 0; --i) {
      if (a.w[i] != b.w[i]) return a.w[i] < b.w[i];
    }
    return false;
  }
  friend bool operator==(const WideUint& a, const WideUint& b) = default;
};

}  // namespace glvq::pvq
