// Configuration of a quantizer (one schema for every method; each method
// reads the fields it needs). Units: bits are bits per weight of code
// payload (side information is accounted separately), sizes in columns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace glvq::engine {

enum class Method { kGlvq, kRtn, kGptq, kE8p, kPvq };

// "glvq", "rtn", "gptq", "e8p", "pvq".
const char* MethodName(Method method);
std::optional<Method> ParseMethod(std::string_view name);

enum class RtnVariant {
  kMinMax,      // asymmetric min–max grid with an integer zero point
  kClipSearch,  // symmetric midrise grid, clip ratio searched for least MSE
};

// GLVQ learning (ALGORITHMS.md §1.3). Defaults are the faithful ones.
struct GlvqOptions {
  double mu_min = 10.0;     // µ range; mu_max == 0 turns companding off
  double mu_max = 255.0;
  int max_iters = 10;       // alternations: Babai rounding + closed-form G
  double tolerance = 1e-4;  // stop when the relative loss gain is smaller
  int refine_steps = 20;    // Adam steps on the true loss for G and log µ
  double refine_lr = 0.01;  // Adam step, relative to G's initial scale
  double lambda = 1e-3;     // pull of G towards G₀, per vector
  bool exact_search = false;  // final codes by sphere decoding, not Babai
};

// Gain levels of PVQ (ALGORITHMS.md §2, worker/cpu/pvq_gain.h).
enum class PvqGainLevels {
  kLloydMax,      // MSE-optimal levels for the Beta density of the gain
  kBetaQuantile,  // levels at quantiles of that density
};

// PVQ's split of a vector's bits between shape and gain. The pulses K are
// the most that fit: the largest K with ⌈log2 N(D, K)⌉ + gain_bits ≤
// ⌊bits · D⌋, so any target rate is met from below.
struct PvqOptions {
  int gain_bits = -1;  // 0..8 bits per gain code; -1: the split with the least
                       // MSE on a fixed Gaussian trial (worker/cpu/pvq_rate.h)
  PvqGainLevels gain_levels = PvqGainLevels::kLloydMax;
};

struct QuantizerConfig {
  Method method = Method::kGlvq;
  double bits = 2.0;       // target average bits per weight (payload)
  int dim = 8;             // vector dimension d (glvq; pvq: D); 8 for e8p; 1 scalar
  int group_size = 128;    // columns per group
  uint64_t seed = 0;       // every random choice derives from it and the tensor name
  int threads = 1;         // worker threads; 0 = all cores. Never changes results.
  double damp = 0.01;      // Hessian damping, fraction of mean(diag H)
  bool sdba = false;       // salience-driven bit allocation (glvq)
  bool rht = false;        // randomized Hadamard incoherence processing
  bool ldlq = false;       // cross-group (block LDLQ) error feedback (glvq)
  bool act_order = false;  // gptq: quantize columns by decreasing diag(H)
  RtnVariant rtn_variant = RtnVariant::kClipSearch;  // rtn and gptq grids
  GlvqOptions glvq;
  PvqOptions pvq;
};

// INVALID_ARGUMENT with a specific message for any out-of-range field:
// bits outside 1..8 (fractional bits need SDBA, or pvq), d not in
// {2,4,8,16,32} or larger than the group (pvq: 2..256, dividing the group),
// inverted or negative µ range, a pvq rate no pyramid reaches, ...
absl::Status ValidateConfig(const QuantizerConfig& config);

// Integer bit widths for fractional targets: floor(bits), and the share of
// weights that get one more bit.
struct BitSplit {
  int low = 2;
  double high_share = 0.0;
};
BitSplit SplitBits(double bits);

}  // namespace glvq::engine
