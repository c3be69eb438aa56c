#include "common/quant/config.h"

#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/packed/pvq.h"
#include "common/packed/quantized_tensor.h"
#include "common/packed/pvq_rate.h"
#include "common/packed/trellis_tensor.h"

namespace glvq::quant {
namespace {

struct MethodEntry {
  Method method;
  std::string_view name;
  std::string_view format_method;
};
// The packed format's names are the methods' own: one spelling each.
constexpr std::array<MethodEntry, kAllMethods.size()> kMethods = {{
    {Method::kGlvq, kMethodGlvq, kMethodGlvq},
    {Method::kRtn, kMethodRtn, kMethodRtn},
    {Method::kGptq, "gptq", kMethodRtn},
    {Method::kE8p, kMethodE8p, kMethodE8p},
    {Method::kPvq, kMethodPvq, kMethodPvq},
    {Method::kTrellis, kMethodTrellis, kMethodTrellis},
}};

absl::Status Invalid(const std::string& msg) { return absl::InvalidArgumentError(msg); }

constexpr int kMaxMuGrid = 32;

absl::Status ValidateGlvq(const QuantizerConfig& c) {
  const GlvqOptions& g = c.glvq;
  if (c.dim != 2 && c.dim != 4 && c.dim != 8 && c.dim != 16 && c.dim != 32) {
    return Invalid(absl::StrCat("dim must be one of 2, 4, 8, 16, 32, got ", c.dim));
  }
  if (c.dim > c.group_size) {
    return Invalid(absl::StrCat("dim ", c.dim, " is larger than the group size ", c.group_size));
  }
  if (!(g.mu_min >= 0) || !(g.mu_max >= 0) || !std::isfinite(g.mu_max)) {
    return Invalid(absl::StrFormat("mu range [%g, %g] must be finite and non-negative",
                                   g.mu_min, g.mu_max));
  }
  if (g.mu_min > g.mu_max) {
    return Invalid(absl::StrFormat("mu range is inverted: min %g > max %g", g.mu_min, g.mu_max));
  }
  // Bounded: a hostile job spec must not buy unbounded worker time.
  if (g.max_iters < 1 || g.max_iters > kMaxIterations || g.refine_steps < 0 ||
      g.refine_steps > kMaxRefineSteps) {
    return Invalid(absl::StrCat("glvq needs iterations in 1..", kMaxIterations,
                                " and refineSteps in 0..", kMaxRefineSteps));
  }
  if (g.mu_grid < 0 || g.mu_grid > kMaxMuGrid) {
    return Invalid(absl::StrCat("glvq mu grid must be within 0..", kMaxMuGrid, ", got ", g.mu_grid));
  }
  if (!(g.tolerance >= 0) || !(g.refine_lr > 0) || !(g.lambda >= 0)) {
    return Invalid("glvq tolerance and lambda must be >= 0, refine_lr > 0");
  }
  return absl::OkStatus();
}

absl::Status ValidateTrellis(const QuantizerConfig& c) {
  const BitSplit split = SplitBits(c.bits);
  if (split.low < 1 || c.bits > 4) {
    return Invalid(absl::StrFormat("trellis codes 1..4 bits per weight, got %g", c.bits));
  }
  if (c.trellis.window < 8 || c.trellis.window > 16) {
    return Invalid(absl::StrCat("trellis window must be within 8..16, got ", c.trellis.window));
  }
  const int tile = c.trellis.tile_rows;
  if (tile < 1 || tile > kMaxTrellisTileRows || (tile & (tile - 1)) != 0) {
    return Invalid(absl::StrCat("trellis tile rows must be 1, 2, 4, 8, 16, 32 or 64, got ", tile));
  }
  if (c.group_size < 8) {
    return Invalid(absl::StrCat("trellis needs groups of at least 8 columns, got ", c.group_size));
  }
  if (c.sdba && split.high_share == 0 && (c.bits < 2 || c.bits > 3)) {
    return Invalid("trellis with sdba at an integer rate needs bits 2 or 3 (groups get N-1..N+1)");
  }
  return absl::OkStatus();
}

absl::Status ValidatePvq(const QuantizerConfig& c) {
  if (c.dim < 2 || c.dim > pvq::kMaxDim) {
    return Invalid(absl::StrCat("pvq dim D must be within 2..", pvq::kMaxDim, ", got ", c.dim));
  }
  if (c.group_size % c.dim != 0) {
    return Invalid(absl::StrCat("pvq needs a group size that is a multiple of D: group size ",
                                c.group_size, ", D ", c.dim));
  }
  if (c.pvq.gain_bits < -1 || c.pvq.gain_bits > 8) {
    return Invalid(absl::StrCat("pvq gain bits must be within 0..8 (or -1: chosen by trial), got ",
                                c.pvq.gain_bits));
  }
  auto candidates = pvq::RateCandidates(c.dim, c.bits, c.pvq.gain_bits);
  return candidates.ok() ? absl::OkStatus() : candidates.status();
}

}  // namespace

const char* MethodName(Method method) {
  for (const MethodEntry& e : kMethods) {
    if (e.method == method) return e.name.data();  // literals: NUL-terminated
  }
  return "?";
}

std::string_view FormatMethod(Method method) {
  for (const MethodEntry& e : kMethods) {
    if (e.method == method) return e.format_method;
  }
  return "?";
}

int DefaultGroupSize(Method method) {
  return method == Method::kTrellis ? kTrellisGroupSize : QuantizerConfig{}.group_size;
}

std::optional<Method> ParseMethod(std::string_view name) {
  for (const MethodEntry& e : kMethods) {
    if (name == e.name) return e.method;
  }
  return std::nullopt;
}

BitSplit SplitBits(double bits) {
  const double low = std::floor(bits);
  return {static_cast<int>(low), bits - low};
}

absl::Status ValidateConfig(const QuantizerConfig& c) {
  if (!(c.bits >= 1.0 && c.bits <= 8.0)) {
    return Invalid(absl::StrFormat("bits must be within 1..8, got %g", c.bits));
  }
  const bool fractional = c.bits != std::floor(c.bits);
  const bool allocates = c.sdba && (c.method == Method::kGlvq || c.method == Method::kTrellis);
  if (fractional && !allocates && c.method != Method::kPvq) {
    return Invalid(absl::StrFormat(
        "fractional bits (%g) need salience-driven bit allocation (glvq or trellis with sdba) "
        "or pvq",
        c.bits));
  }
  if (c.group_size < 1 || c.group_size > 4096) {
    return Invalid(absl::StrCat("group_size must be within 1..4096, got ", c.group_size));
  }
  if (c.threads < 0 || c.threads > kMaxThreads) {
    return Invalid(absl::StrCat("threads must be within 0..", kMaxThreads, " (0 = all cores), got ",
                                c.threads));
  }
  if (!(c.damp >= 0 && c.damp < 1)) return Invalid("damp must be within [0, 1)");
  if (c.sdba && c.method != Method::kGlvq && c.method != Method::kTrellis) {
    return Invalid("sdba applies to glvq and trellis only");
  }
  // ldlq is on by default for every method but switches only glvq and
  // trellis: gptq, e8p and pvq always feed errors back, rtn never does
  // (that is gptq).
  switch (c.method) {
    case Method::kGlvq:
      return ValidateGlvq(c);
    case Method::kE8p:
      if (c.bits != 2.0) return Invalid("e8p is a 2-bit codebook: bits must be 2");
      if (c.group_size % 8 != 0) return Invalid("e8p needs a group size that is a multiple of 8");
      return absl::OkStatus();
    case Method::kPvq:
      return ValidatePvq(c);
    case Method::kTrellis:
      return ValidateTrellis(c);
    case Method::kRtn:
    case Method::kGptq:
      return absl::OkStatus();
  }
  return Invalid("unknown method");
}

const char* PresetName(Preset preset) { return preset == Preset::kPaper ? "paper" : "best"; }

std::optional<Preset> ParsePreset(std::string_view name) {
  if (name == "best") return Preset::kBest;
  if (name == "paper") return Preset::kPaper;
  return std::nullopt;
}

QuantizerConfig PresetConfig(Preset preset) {
  QuantizerConfig c;
  if (preset == Preset::kPaper) {
    c.rht = false;
    c.ldlq = false;
    c.rtn_variant = RtnVariant::kClipSearch;
    c.glvq.mu_min = 10.0;
    c.glvq.mu_max = 255.0;
    c.glvq.mu_grid = 0;
    c.glvq.row_gain = false;
  }
  return c;
}

}  // namespace glvq::quant
