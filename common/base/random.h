// Deterministic pseudo-random numbers for everything that must give the same
// bytes on every run and machine (synthetic models, quantizer seeds).
// std:: distributions are implementation-defined, so the transforms are ours.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace glvq {

// SplitMix64: mixes a 64-bit state; also used to derive sub-seeds from
// (seed, identity) pairs.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Combines a seed with an identity (e.g. a hash of a tensor name and a
// group index) into an independent stream seed.
inline uint64_t DeriveSeed(uint64_t seed, uint64_t identity) {
  return SplitMix64(seed ^ SplitMix64(identity));
}

// 64-bit FNV-1a of a string, for turning names into identities.
inline uint64_t Fnv1a64(const char* data, size_t size) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 0x100000001B3ull;
  }
  return h;
}

// xoshiro256** generator with exactly specified uniform and normal outputs.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& s : s_) s = seed = SplitMix64(seed);
  }

  uint64_t NextU64() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

  // Uniform integer in [0, n), n > 0 (multiply-shift; bias < 2^-32 for n < 2^32).
  uint64_t Below(uint64_t n) {
    __extension__ using U128 = unsigned __int128;
    return static_cast<uint64_t>((static_cast<U128>(NextU64()) * n) >> 64);
  }

  // Standard normal by Box–Muller (the second value is discarded so that
  // each call consumes exactly two uniforms: simpler to reason about).
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

  // Student-t with `nu` degrees of freedom (nu a positive integer), scaled
  // to unit variance when nu > 2.
  double StudentT(int nu) {
    double chi2 = 0.0;
    for (int i = 0; i < nu; ++i) {
      const double z = Normal();
      chi2 += z * z;
    }
    const double t = Normal() / std::sqrt(chi2 / nu);
    return nu > 2 ? t * std::sqrt((nu - 2.0) / nu) : t;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace glvq
