#include "coordinator/estimates.h"

#include <algorithm>
#include <cmath>

namespace glvq::coordinator {
namespace {

using quant::Method;

// Average code bits per weight (SDBA keeps the weight-averaged width at
// the target, so the average is exact for it too; pvq's is at most it).
double CodeBits(const quant::QuantizerConfig& c) {
  if (c.method == Method::kE8p) return 2.0;
  return c.bits;
}

bool NeedsInverseFactor(const quant::QuantizerConfig& c) {
  return c.method == Method::kGptq || c.method == Method::kE8p || c.method == Method::kPvq ||
         c.ldlq || c.sdba;  // (trellis: through ldlq)
}

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

}  // namespace

bool CanSplitTensor(const quant::QuantizerConfig& c) {
  if (c.rht) return false;
  switch (c.method) {
    case Method::kGlvq:
      return !c.ldlq && !c.sdba && !c.glvq.row_gain;
    case Method::kRtn:
      return true;
    case Method::kGptq:
    case Method::kE8p:
    case Method::kPvq:
    case Method::kTrellis:
      return false;
  }
  return false;
}

uint64_t EstimatePackedBytes(const quant::QuantizerConfig& c, const TaskShape& s) {
  const auto rows = static_cast<uint64_t>(s.rows);
  const auto cols = static_cast<uint64_t>(s.cols);
  const auto groups = static_cast<uint64_t>(s.groups);
  if (rows == 0 || cols == 0 || groups == 0) return 0;
  // Codes: every group's stream is whole bytes. Groups are group_size wide
  // except possibly the last; spread the columns evenly for the rounding.
  uint64_t codes = 0;
  if (c.method == Method::kE8p) {
    // One 16-bit codeword per 8 columns of a row, short ones included.
    const uint64_t width = CeilDiv(cols, groups);
    codes = 2 * rows * CeilDiv(width, 8) * groups;
  } else {
    const double bits_per_group = static_cast<double>(rows) * static_cast<double>(cols) *
                                  CodeBits(c) / static_cast<double>(groups);
    codes = groups * static_cast<uint64_t>(std::ceil(bits_per_group / 8.0));
  }
  const uint64_t bits_and_offsets = groups * (1 + 8);
  uint64_t side = 0;
  switch (c.method) {
    case Method::kGlvq: {
      const auto d = static_cast<uint64_t>(c.dim);
      side = groups * (4 * d * d + 4 + 4);  // generators, mu, scale
      if (c.glvq.row_gain) side += rows * 4;  // a tensor with row gains is never split
      break;
    }
    case Method::kRtn:
    case Method::kGptq:
      side = groups * rows * (4 + 4);  // scale and zero per row and group
      break;
    case Method::kE8p:
      side = groups * 4;  // scale
      break;
    case Method::kPvq:
      // pulses (2 per group), row norms, at most 2 x 256 gain levels; no bits.
      side = groups * 8 + rows * 4 + 2 * 4 * 256 - groups;
      break;
    case Method::kTrellis:
      // Each row's stream is whole bytes; group and row gains.
      codes += groups * rows;
      side = groups * 4 + rows * 4;
      break;
  }
  return codes + bits_and_offsets + side;
}

uint64_t PerTensorPackedBytes(const quant::QuantizerConfig& c) {
  return 8 + (c.rht ? 16 : 0);  // the closing offset; rht_seed (2 x I64)
}

uint64_t EstimateTaskMemory(const quant::QuantizerConfig& c, const TaskShape& s, bool calibrated) {
  const auto weights = static_cast<uint64_t>(s.rows) * static_cast<uint64_t>(s.cols);
  const auto n = static_cast<uint64_t>(s.cols);
  uint64_t bytes = 24 * weights;
  if (c.rht) bytes += 4 * weights;
  uint64_t hessians = 0;
  if (calibrated) hessians += 2 + (c.rht ? 1 : 0);
  if (NeedsInverseFactor(c)) hessians += 1;
  if (c.method == Method::kTrellis && c.refit_scales) {
    // worker/cpu/scale_refit.cc: unit-gain values, a few rows × n doubles
    // at its peak, H copied, Tᵀdiag(s²)T and H ∘ it.
    bytes += 40 * weights;
    hessians += 3;
  }
  bytes += 8 * n * n * hessians;
  return bytes + EstimatePackedBytes(c, s);
}

double WeightsPerSecond(const quant::QuantizerConfig& c) {
  // Whole pipeline (Hessian preparation, RHT, search, measurement, write)
  // per CPU-second, each method's defaults with Hessians, SmolLM2 layer 0
  // (glvq-bench pipeline, docs/performance.md). Where a setting was not
  // measured, the figure is scaled by the engine-only ratio between the
  // settings (docs/job-spec.md says which).
  switch (c.method) {
    case Method::kRtn:
      return 1.0e6;
    case Method::kGptq:
      return 0.7e6;
    case Method::kE8p:
      return 0.5e6;
    case Method::kPvq:
      if (c.dim <= 32) return 1.0e6;
      return c.dim <= 64 ? 0.67e6 : 0.5e6;
    case Method::kGlvq:
      if (c.dim >= 32) return 0.17e6;
      if (c.dim >= 16) return 0.27e6;
      // The µ grid quantizes every group once per µ: 6.7× the time.
      return c.glvq.mu_max == 0 ? 0.4e6 : 0.06e6;
    case Method::kTrellis:
      // The Viterbi search (93 % of it) costs ∝ 2^L; measured at L = 12
      // with 16 × 16 tiles (rows of 32 columns: 0.117e6, the two
      // tail-biting passes wrap around short sequences).
      return 0.16e6 * std::ldexp(1.0, 12 - c.trellis.window);
  }
  return 0.5e6;
}

double EstimateSeconds(const quant::QuantizerConfig& c, uint64_t weights) {
  return static_cast<double>(weights) / WeightsPerSecond(c);
}

}  // namespace glvq::coordinator
