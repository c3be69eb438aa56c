#include "common/jobspec/quantizer_spec.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/glob.h"
#include "common/jobspec/yaml_proto.h"

namespace glvq::jobspec {
namespace {

absl::StatusOr<quant::Preset> ToEnginePreset(v1::Preset p) {
  switch (p) {
    case v1::PRESET_UNSPECIFIED:
    case v1::PRESET_BEST:
      return quant::Preset::kBest;
    case v1::PRESET_PAPER:
      return quant::Preset::kPaper;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown preset value ", static_cast<int>(p)));
}

absl::StatusOr<quant::RtnVariant> ToEngineRtnVariant(v1::RtnVariant v,
                                                      quant::RtnVariant preset) {
  switch (v) {
    case v1::RTN_VARIANT_UNSPECIFIED:
      return preset;
    case v1::RTN_VARIANT_CLIP_SEARCH:
      return quant::RtnVariant::kClipSearch;
    case v1::RTN_VARIANT_MIN_MAX:
      return quant::RtnVariant::kMinMax;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown rtnVariant value ", static_cast<int>(v)));
}

v1::RtnVariant FromEngineRtnVariant(quant::RtnVariant v) {
  return v == quant::RtnVariant::kMinMax ? v1::RTN_VARIANT_MIN_MAX : v1::RTN_VARIANT_CLIP_SEARCH;
}

absl::StatusOr<quant::PvqGainLevels> ToEnginePvqGainLevels(v1::PvqGainLevels v) {
  switch (v) {
    case v1::PVQ_GAIN_LEVELS_UNSPECIFIED:
      return quant::QuantizerConfig().pvq.gain_levels;
    case v1::PVQ_GAIN_LEVELS_LLOYD_MAX:
      return quant::PvqGainLevels::kLloydMax;
    case v1::PVQ_GAIN_LEVELS_BETA_QUANTILE:
      return quant::PvqGainLevels::kBetaQuantile;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown pvqGainLevels value ", static_cast<int>(v)));
}

v1::PvqGainLevels FromEnginePvqGainLevels(quant::PvqGainLevels v) {
  return v == quant::PvqGainLevels::kBetaQuantile ? v1::PVQ_GAIN_LEVELS_BETA_QUANTILE
                                                   : v1::PVQ_GAIN_LEVELS_LLOYD_MAX;
}

}  // namespace

absl::StatusOr<quant::Method> ToEngineMethod(v1::Method method) {
  if (method == v1::METHOD_UNSPECIFIED) return quant::QuantizerConfig().method;
  const auto* value = v1::Method_descriptor()->FindValueByNumber(method);
  if (value != nullptr) {
    if (std::optional<quant::Method> m = quant::ParseMethod(YamlEnumName(value))) return *m;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown method value ", static_cast<int>(method),
                   " (known: ", YamlEnumNames(v1::Method_descriptor()), ")"));
}

v1::Method FromEngineMethod(quant::Method method) {
  const auto* value = FindYamlEnumValue(v1::Method_descriptor(), quant::MethodName(method));
  // Every engine method has a proto value: tests/unit/job_spec_test.cc.
  return value == nullptr ? v1::METHOD_UNSPECIFIED : static_cast<v1::Method>(value->number());
}

absl::StatusOr<quant::QuantizerConfig> ToQuantizerConfig(const v1::QuantizerSpec& s) {
  auto preset = ToEnginePreset(s.preset());
  if (!preset.ok()) return preset.status();
  quant::QuantizerConfig c = quant::PresetConfig(*preset);
  auto method = ToEngineMethod(s.method());
  if (!method.ok()) return method.status();
  c.method = *method;
  c.group_size = quant::DefaultGroupSize(c.method);  // unless the spec sets one (below)
  auto rtn_variant = ToEngineRtnVariant(s.rtn_variant(), c.rtn_variant);
  if (!rtn_variant.ok()) return rtn_variant.status();
  c.rtn_variant = *rtn_variant;
  auto gain_levels = ToEnginePvqGainLevels(s.pvq_gain_levels());
  if (!gain_levels.ok()) return gain_levels.status();
  c.pvq.gain_levels = *gain_levels;
  if (s.has_pvq_gain_bits()) c.pvq.gain_bits = s.pvq_gain_bits();
  if (s.has_bits()) c.bits = s.bits();
  if (s.has_dim()) c.dim = s.dim();
  if (s.has_group_size()) c.group_size = s.group_size();
  if (s.has_seed()) c.seed = s.seed();
  if (s.has_threads()) c.threads = s.threads();
  if (s.has_damp()) c.damp = s.damp();
  if (s.has_sdba()) c.sdba = s.sdba();
  if (s.has_rht()) c.rht = s.rht();
  if (s.has_ldlq()) c.ldlq = s.ldlq();
  if (s.has_act_order()) c.act_order = s.act_order();
  quant::GlvqOptions& g = c.glvq;
  if (s.mu().has_min()) g.mu_min = s.mu().min();
  if (s.mu().has_max()) g.mu_max = s.mu().max();
  if (s.mu().has_grid()) g.mu_grid = s.mu().grid();
  if (s.has_iterations()) g.max_iters = s.iterations();
  if (s.has_tolerance()) g.tolerance = s.tolerance();
  if (s.has_refine_steps()) g.refine_steps = s.refine_steps();
  if (s.has_refine_lr()) g.refine_lr = s.refine_lr();
  if (s.has_lambda()) g.lambda = s.lambda();
  if (s.has_exact_search()) g.exact_search = s.exact_search();
  if (s.has_row_gain()) g.row_gain = s.row_gain();
  if (s.has_trellis_window()) c.trellis.window = s.trellis_window();
  if (s.has_refit_scales()) c.refit_scales = s.refit_scales();
  if (s.has_trellis_tile_rows()) c.trellis.tile_rows = s.trellis_tile_rows();
  return c;
}

v1::QuantizerSpec FromQuantizerConfig(const quant::QuantizerConfig& c) {
  v1::QuantizerSpec s;
  s.set_method(FromEngineMethod(c.method));
  s.set_rtn_variant(FromEngineRtnVariant(c.rtn_variant));
  s.set_bits(c.bits);
  s.set_dim(c.dim);
  s.set_group_size(c.group_size);
  s.set_seed(c.seed);
  s.set_threads(c.threads);
  s.set_damp(c.damp);
  s.set_sdba(c.sdba);
  s.set_rht(c.rht);
  s.set_ldlq(c.ldlq);
  s.set_act_order(c.act_order);
  const quant::GlvqOptions& g = c.glvq;
  s.mutable_mu()->set_min(g.mu_min);
  s.mutable_mu()->set_max(g.mu_max);
  s.mutable_mu()->set_grid(g.mu_grid);
  s.set_iterations(g.max_iters);
  s.set_tolerance(g.tolerance);
  s.set_refine_steps(g.refine_steps);
  s.set_refine_lr(g.refine_lr);
  s.set_lambda(g.lambda);
  s.set_exact_search(g.exact_search);
  s.set_row_gain(g.row_gain);
  s.set_trellis_window(c.trellis.window);
  s.set_refit_scales(c.refit_scales);
  s.set_trellis_tile_rows(c.trellis.tile_rows);
  s.set_pvq_gain_bits(c.pvq.gain_bits);
  s.set_pvq_gain_levels(FromEnginePvqGainLevels(c.pvq.gain_levels));
  return s;
}

v1::QuantizerSpec ApplyOverride(const v1::QuantizerSpec& spec, const v1::TensorOverride& o) {
  v1::QuantizerSpec out = spec;
  if (o.has_bits()) out.set_bits(o.bits());
  return out;
}

v1::QuantizerSpec QuantizerFor(const v1::JobSpec& spec, std::string_view name) {
  for (const v1::TensorOverride& o : spec.tensors().overrides()) {
    if (GlobMatch(o.pattern(), name)) return ApplyOverride(spec.quantizer(), o);
  }
  return spec.quantizer();
}

}  // namespace glvq::jobspec
