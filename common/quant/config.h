// Configuration of a quantizer (one schema for every method; each method
// reads the fields it needs). Units: bits are bits per weight of code
// payload (side information is accounted separately), sizes in columns.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace glvq::quant {

// The quantization methods. Their one spelling is MethodName's (job specs,
// CLI flags, reports, JSON); the proto enum's value names are derived from
// it (common/jobspec/quantizer_spec.h), and the packed format names the
// layout each writes (FormatMethod).
enum class Method { kGlvq, kRtn, kGptq, kE8p, kPvq, kTrellis };
inline constexpr std::array<Method, 6> kAllMethods = {Method::kGlvq, Method::kRtn,
                                                      Method::kGptq, Method::kE8p,
                                                      Method::kPvq,  Method::kTrellis};

// "glvq", "rtn", "gptq", "e8p", "pvq", "trellis".
const char* MethodName(Method method);

// The packed format's method (common/packed/quantized_tensor.h) of the
// tensors `method` writes: the method's own, except gptq, which writes
// "rtn" tensors (its grids are rtn's; only the search differs).
std::string_view FormatMethod(Method method);

// Columns per group a method takes when a job leaves the group size unset:
// 16 for trellis (a group is one BlockLDLQ block, and 16-row tiles keep its
// sequences 256 weights long: on SmolLM2 at 2 bits ΔNLL +0.758, against
// +0.919 for 32-column groups coded row by row and +1.131 for 128; see
// TrellisOptions.tile_rows), 128 otherwise.
int DefaultGroupSize(Method method);
inline constexpr int kTrellisGroupSize = 16;
std::optional<Method> ParseMethod(std::string_view name);

enum class RtnVariant {
  kMinMax,      // asymmetric min–max grid with an integer zero point
  kClipSearch,  // symmetric midrise grid, clip ratio searched for least MSE
};

// GLVQ learning (docs/algorithms.md). Defaults are the best measured
// configuration; Preset::kPaper gives the paper's (µ ∈ [10, 255] from a
// kurtosis start, no RHT, no LDLQ).
struct GlvqOptions {
  // µ range; mu_max == 0 (the default) turns companding off: on SmolLM2
  // the grid over [0, 5] never beat µ = 0 and cost 6.6× the time
  // (docs/quality.md). `mu_max = 5` brings the grid back.
  double mu_min = 0.0;
  double mu_max = 0.0;
  // µ candidates tried per group, spread over [mu_min, mu_max] (quadratic
  // spacing, both ends included); each is scored by the true loss after
  // kMuGridAlternations alternations and the best starts the full
  // learning. 0: start from the paper's kurtosis rule instead.
  int mu_grid = 6;
  int max_iters = 10;       // alternations: Babai rounding + closed-form G
  double tolerance = 1e-4;  // stop when the relative loss gain is smaller
  int refine_steps = 20;    // Adam steps on the true loss for G and log µ
  double refine_lr = 0.01;  // Adam step, relative to G's initial scale
  double lambda = 1e-3;     // pull of G towards G₀, per vector
  bool exact_search = false;  // final codes by sphere decoding, not Babai
  // Per-row gains: each row is divided by its RMS before the groups are
  // learned and the gains are stored (F32, one per row: 32/cols bits per
  // weight). The loss stays the true one: rows are weighted by their gain².
  // Off by default: on SmolLM2 at 2 bits with RHT and LDLQ it measured
  // ΔNLL +1.46 against +1.385 without (docs/quality.md); RHT already evens
  // the rows out. It pays without RHT (tests/unit/glvq_defaults_test.cc).
  bool row_gain = false;
};

// Gain levels of PVQ (docs/algorithms.md §2, worker/cpu/pvq_gain.h).
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

// Named starting points for a whole configuration; explicit fields of a job
// spec override them.
enum class Preset {
  kBest,   // the best configuration measured on a real model (the defaults)
  kPaper,  // the GLVQ paper's: µ ∈ [10, 255] from kurtosis, no RHT, no
           // LDLQ; rtn/gptq grids by clip search
};
const char* PresetName(Preset preset);  // "best", "paper"
std::optional<Preset> ParsePreset(std::string_view name);

// The trellis method (docs/algorithms.md §6, worker/cpu/trellis_quantizer.h).
struct TrellisOptions {
  // State bits L of the bitshift trellis, 8..16. The Viterbi search costs
  // ∝ 2^L per weight (CPU, one core, k = 2: L = 10 ≈ 1.9, L = 12 ≈ 0.46,
  // L = 14 ≈ 0.1 M weights/s) and buys Gaussian MSE 0.079 / 0.073 / 0.071
  // at 2 bits (limit 0.0625).
  int window = 12;
  // Rows per tail-biting sequence (1, 2, 4, …, 64; common/packed/
  // trellis_tensor.h): with R > 1, a group's R consecutive rows form one
  // sequence of R · group_size weights, so narrow feedback blocks keep long
  // sequences (QTIP's 2-D tiles). 16 with 16-column groups measured best
  // (docs/quality.md); 1 is the row-by-row layout.
  int tile_rows = 16;
};

// Upper bounds ValidateConfig enforces on what a job spec may ask for.
inline constexpr int kMaxThreads = 1024;      // also capped at the cores (parallel.h)
inline constexpr int kMaxIterations = 1000;   // glvq alternations
inline constexpr int kMaxRefineSteps = 10000; // glvq Adam steps

struct QuantizerConfig {
  Method method = Method::kGlvq;
  double bits = 2.0;       // target average bits per weight (payload)
  int dim = 8;             // vector dimension d (glvq; pvq: D); 8 for e8p; 1 scalar
  int group_size = 128;    // columns per group (DefaultGroupSize(method) in job specs)
  uint64_t seed = 0;       // every random choice derives from it and the tensor name
  int threads = 0;         // worker threads; 0 = all usable cores (the container's
                           // quota: common/base/machine.h). Never changes results.
  double damp = 0.01;      // Hessian damping, fraction of mean(diag H)
  bool sdba = false;       // salience-driven bit allocation (glvq, trellis)
  bool rht = true;         // randomized Hadamard incoherence processing
  // After coding, refit the stored gains to the Hessian-weighted loss with
  // the codes fixed (worker/cpu/scale_refit.h): trellis' row and group
  // gains. Never raises the proxy loss; the format is unchanged.
  bool refit_scales = true;
  bool ldlq = true;        // cross-group (block LDLQ) error feedback: switches
                           // glvq and trellis (needs a Hessian, a no-op
                           // without one); gptq/e8p/pvq always feed back,
                           // rtn never does
  bool act_order = false;  // gptq: quantize columns by decreasing diag(H)
  RtnVariant rtn_variant = RtnVariant::kClipSearch;  // rtn and gptq grids
  GlvqOptions glvq;
  PvqOptions pvq;
  TrellisOptions trellis;
};

// INVALID_ARGUMENT with a specific message for any out-of-range field:
// bits outside 1..8 (fractional bits need SDBA, or pvq), d not in
// {2,4,8,16,32} or larger than the group (pvq: 2..256, dividing the group),
// inverted or negative µ range, a pvq rate no pyramid reaches, ...
absl::Status ValidateConfig(const QuantizerConfig& config);

// The configuration `preset` starts from (kBest: QuantizerConfig{}).
QuantizerConfig PresetConfig(Preset preset);

// Integer bit widths for fractional targets: floor(bits), and the share of
// weights that get one more bit.
struct BitSplit {
  int low = 2;
  double high_share = 0.0;
};
BitSplit SplitBits(double bits);

}  // namespace glvq::quant
