#include "common/packed/e8p.h"

#include <bit>

namespace glvq::e8p {
namespace {

// The 29 abs vectors of norm² 12 (QuIP#'s choice, in its order): the
// coordinates that hold ½, the other five hold 3/2.
constexpr int kNorm12Halves[29][3] = {
    {1, 2, 3}, {0, 2, 3}, {0, 1, 3}, {0, 1, 2},                         //
    {3, 6, 7}, {3, 5, 7}, {3, 4, 7}, {3, 5, 6}, {3, 4, 6}, {3, 4, 5},  //
    {2, 6, 7}, {2, 5, 7}, {2, 4, 7}, {2, 5, 6}, {2, 4, 6}, {2, 4, 5},  //
    {1, 6, 7}, {1, 5, 7}, {1, 4, 7}, {1, 5, 6}, {1, 4, 6},             //
    {0, 4, 5}, {0, 6, 7}, {0, 5, 7}, {0, 4, 7}, {0, 5, 6}, {0, 4, 6},  //
    {0, 1, 4}, {2, 3, 7}};

// Doubled norm² bound of the first part: ‖a‖² ≤ 10  ⇔  Σ (2a_i)² ≤ 40.
constexpr int kMaxDoubledNorm2 = 40;

std::array<DoubledAbs, kNumAbs> BuildAbsTable() {
  std::array<DoubledAbs, kNumAbs> table{};
  int count = 0;
  // {1, 3, 5}^8 in lexicographic order, coordinate 0 most significant.
  for (int code = 0; code < 6561; ++code) {  // 3^8
    DoubledAbs a{};
    int norm2 = 0;
    for (int i = kDim - 1, rest = code; i >= 0; --i, rest /= 3) {
      a[i] = static_cast<int8_t>(2 * (rest % 3) + 1);
      norm2 += a[i] * a[i];
    }
    if (norm2 <= kMaxDoubledNorm2) table[count++] = a;
  }
  for (const auto& halves : kNorm12Halves) {
    DoubledAbs a;
    a.fill(3);
    for (int i : halves) a[i] = 1;
    table[count++] = a;
  }
  return table;
}

}  // namespace

const std::array<DoubledAbs, kNumAbs>& AbsTable() {
  static const std::array<DoubledAbs, kNumAbs> table = BuildAbsTable();
  return table;
}

int AbsSumParity(int a) {
  int doubled_sum = 0;
  for (int8_t v : AbsTable()[a]) doubled_sum += v;
  return (doubled_sum / 2) & 1;
}

std::array<double, kDim> Codeword(uint16_t index) {
  const DoubledAbs& a = AbsTable()[AbsIndex(index)];
  const int signs = SignBits(index);
  const bool negate0 = ((std::popcount(static_cast<unsigned>(signs)) +
                         AbsSumParity(AbsIndex(index))) & 1) != 0;
  const double shift = PlusShift(index) ? 0.25 : -0.25;
  std::array<double, kDim> c;
  for (int i = 0; i < kDim; ++i) {
    const bool negate = i == 0 ? negate0 : ((signs >> (i - 1)) & 1) != 0;
    c[i] = (negate ? -0.5 : 0.5) * a[i] + shift;
  }
  return c;
}

}  // namespace glvq::e8p
