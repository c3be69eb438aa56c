// What quantizing a tensor (or a range of its column groups) produces: the
// packed tensor, its dense decode, per-group figures and the error sums a
// split tensor's quality is combined from. The engine fills these
// (worker/engine/quantizer.h); the wire codec (common/rpc/result_codec.h)
// and the coordinator's assembler read them.
#pragma once

#include <span>
#include <vector>

#include "common/packed/quantized_tensor.h"

namespace glvq::quant {

// SQNR reported when the error is exactly zero, and the cap on every SQNR.
inline constexpr double kMaxSqnrDb = 300.0;

// Per-group figures, for reports and metrics.
struct GroupStats {
  int bits = 0;
  double mu = 0;           // glvq: learned companding parameter
  int iterations = 0;      // glvq: alternations run
  double proxy_loss = 0;   // group's tr(ΔW H_gg ΔWᵀ) / tr(W H_gg Wᵀ)
};

// CPU seconds of the calling thread in each stage of quantizing one tensor
// (worker/engine/quantizer.h), for profiles: work on the engine's own
// extra threads is not counted, so profile with threads = 1. Never written
// anywhere a result is.
struct StageSeconds {
  double prepare = 0;    // checks, Hessian symmetry, damping and PD check
  double transform = 0;  // randomized Hadamard transform of W and H
  double search = 0;     // the method proper (codes, scales; LDLQ feedback)
  double decode = 0;     // validation and reference decode of the result
  double measure = 0;    // quality (NMSE, proxy loss, top error), group stats, accounting
};

struct QuantizeResult {
  QuantizedTensor tensor;          // packed form; tensor.quality is set
  std::vector<float> dequantized;  // rows*cols; bit-identical to DequantizeRef(tensor)
  std::vector<GroupStats> groups;  // one per column group
  BitsAccounting accounting;
  StageSeconds seconds;            // profile only
};

// Error and reference energies of a range (proto QualitySums): the quality
// of a tensor split into ranges is combined from their sums. Each range
// measures the proxy loss with its own diagonal Hessian block, so the
// cross-range terms of H are not part of a split tensor's proxy loss.
struct QualitySums {
  double error = 0;            // ||W - Ŵ||²
  double reference = 0;        // ||W||²
  double proxy_error = 0;      // tr(ΔW H ΔWᵀ)
  double proxy_reference = 0;  // tr(W H Wᵀ)
  // TensorQuality::top_error of the range; ranges combine by max (each
  // range's own largest weights, so a split tensor looks at a few more).
  double top_error = 0;

  QualitySums& operator+=(const QualitySums& other);
  // NMSE, SQNR (capped at kMaxSqnrDb) and proxy loss.
  TensorQuality Quality() const;
};

// TensorQuality::top_error of `approx` against `w` (same size): the worst
// relative error |w − ŵ| / |w| among the kTopWeightShare largest-magnitude
// weights of `w` (at least one; zeros skipped).
double TopWeightError(std::span<const float> w, std::span<const float> approx);

struct RangeResult {
  // A tensor of the range alone: cols = the range's width, groups numbered
  // from 0, quality measured on the range.
  QuantizeResult result;
  QualitySums sums;
};

}  // namespace glvq::quant
