// `glvq-bench quality`: every method and configuration on every weight
// source, one row each, with the Gaussian rate–distortion bound beside it.
// Metrics are aggregated over a source's layers (error sums over reference
// sums) and always measured with the source's own Hessian, whatever the
// quantizer was told.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/benchmarks.h"
#include "bench/sources.h"
#include "nlohmann/json.hpp"
#include "worker/engine/quantizer.h"

namespace glvq::bench {
namespace {

using quant::Method;
using quant::QuantizerConfig;

struct Variant {
  std::string config;  // human-readable label
  QuantizerConfig q;
  bool use_hessian = true;  // give the source's Hessian to the quantizer
};

struct Totals {
  double weights = 0, payload_bits = 0, total_bits = 0;
  double err = 0, ref = 0, herr = 0, href = 0, seconds = 0;
};

struct QualityOptions {
  std::vector<std::string> sources;
  std::vector<std::string> methods;
  std::vector<double> bits;
  std::vector<int> dims;
  int threads = 1;
  bool json = false;
  std::string fixtures = "../shared/fixtures";
};

// Rows keep the configurations they were first measured with: the paper
// preset, with each row's changes on top ("best" rows: the defaults).
QuantizerConfig Base(Method m, double bits, int dim) {
  QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = m;
  c.bits = bits;
  c.dim = dim;
  c.group_size = std::max(c.group_size, dim);
  return c;
}

// PVQ (RHT and BlockLDLQ always on): D = 8, 32, 128 at 2–4 bits with the
// default split and Lloyd–Max gain levels; at D = 32 the fractional rates
// 1.5–3.5, the Beta-quantile levels, and the split that reproduces the
// docs/algorithms.md §2 figures (log2 D + 1 gain bits).
void PvqVariants(const std::string& h, std::vector<Variant>* v) {
  for (int d : {8, 32, 128}) {
    for (int b : {2, 3, 4}) v->push_back({"lloyd-max" + h, Base(Method::kPvq, b, d)});
  }
  for (double b : {1.5, 2.5, 3.5}) v->push_back({"lloyd-max" + h, Base(Method::kPvq, b, 32)});
  for (int d : {8, 32, 128}) {
    QuantizerConfig q = Base(Method::kPvq, 2, d);
    q.pvq.gain_levels = quant::PvqGainLevels::kBetaQuantile;
    v->push_back({"beta-quantile" + h, q});
    q = Base(Method::kPvq, 2, d);
    q.pvq.gain_bits = std::bit_width(static_cast<unsigned>(d));
    v->push_back({"log2(D)+1 gain bits" + h, q});
  }
}

// GLVQ from µ = 0 + RHT to the defaults, one change at a time, at 2–4
// bits, and the default of every method (ldlq acts only with a Hessian).
void GlvqSteps(const std::string& h, std::vector<Variant>* v) {
  for (int b : {2, 3, 4}) {
    QuantizerConfig c = Base(Method::kGlvq, b, 8);
    c.glvq.mu_min = c.glvq.mu_max = 0;
    c.rht = c.ldlq = true;
    v->push_back({"mu=0 rht ldlq" + h, c});
    QuantizerConfig grid = c;
    grid.glvq.mu_max = 5;
    grid.glvq.mu_grid = quant::GlvqOptions{}.mu_grid;
    v->push_back({"mu-grid[0,5] rht ldlq" + h, grid});
    QuantizerConfig gain = c;
    gain.glvq.row_gain = true;
    v->push_back({"mu=0 rht ldlq row-gain" + h, gain});
    for (Method m : {Method::kGlvq, Method::kRtn, Method::kGptq}) {
      QuantizerConfig d;  // the best preset
      d.method = m;
      d.bits = b;
      d.dim = m == Method::kGlvq ? 8 : 1;
      v->push_back({"default" + h, d});
    }
  }
}

// trellis at its defaults (RHT, row × group gains, LDLQ with a Hessian) for
// windows L = 10, 12, 14 (the search costs ∝ 2^L), and SDBA's 2.5 bits.
void TrellisVariants(const std::string& h, std::vector<Variant>* v) {
  for (int b : {2, 3, 4}) {
    for (int window : {10, 12, 14}) {
      QuantizerConfig c;  // the best preset
      c.method = Method::kTrellis;
      c.bits = b;
      c.dim = window;  // the table's d column shows L
      c.trellis.window = window;
      v->push_back({absl::StrCat("L=", window) + h, c});
    }
  }
  QuantizerConfig frac;
  frac.method = Method::kTrellis;
  frac.bits = 2.5;
  frac.sdba = true;
  frac.dim = frac.trellis.window;
  v->push_back({"L=12 sdba" + h, frac});
}

std::vector<Variant> Variants(bool has_hessian) {
  std::vector<Variant> v;
  const std::string h = has_hessian ? " H" : "";
  for (int b : {2, 3, 4}) {
    QuantizerConfig mm = Base(Method::kRtn, b, 1);
    mm.rtn_variant = quant::RtnVariant::kMinMax;
    v.push_back({"min-max", mm});
    v.push_back({"clip-search", Base(Method::kRtn, b, 1)});
    v.push_back({"clip grid" + h, Base(Method::kGptq, b, 1)});
  }
  QuantizerConfig gr = Base(Method::kGptq, 2, 1);
  gr.rht = true;
  v.push_back({"clip grid" + h + " +rht", gr});
  if (has_hessian) {
    QuantizerConfig ao = Base(Method::kGptq, 2, 1);
    ao.act_order = true;
    v.push_back({"clip grid H act-order", ao});
  }
  v.push_back({"rht ldlq" + h, Base(Method::kE8p, 2, 8)});
  PvqVariants(h, &v);
  for (int d : {8, 32}) {
    for (int b : {2, 3, 4}) v.push_back({"mu=[10,255]" + h, Base(Method::kGlvq, b, d)});
  }
  for (int b : {2, 3, 4}) {
    QuantizerConfig c = Base(Method::kGlvq, b, 8);
    c.glvq.mu_min = c.glvq.mu_max = 0;
    v.push_back({"mu=0 (control)" + h, c});
  }
  auto with = [&](const std::string& label, auto set) {
    QuantizerConfig c = Base(Method::kGlvq, 2, 8);
    set(c);
    v.push_back({"mu=[10,255]" + h + " +" + label, c});
  };
  with("rht", [](QuantizerConfig& c) { c.rht = true; });
  with("exact", [](QuantizerConfig& c) { c.glvq.exact_search = true; });
  with("sdba", [](QuantizerConfig& c) { c.sdba = true; });
  if (has_hessian) {
    with("ldlq", [](QuantizerConfig& c) { c.ldlq = true; });
    v.push_back({"mu=[10,255] (weight MSE objective)", Base(Method::kGlvq, 2, 8), false});
    QuantizerConfig best = Base(Method::kGlvq, 2, 8);
    best.glvq.mu_min = best.glvq.mu_max = 0;
    best.ldlq = best.rht = true;
    v.push_back({"mu=0 H +ldlq +rht", best});
  }
  GlvqSteps(h, &v);
  TrellisVariants(h, &v);
  return v;
}

bool Selected(const QualityOptions& o, const Variant& v) {
  auto has = [](const auto& list, const auto& x) {
    return list.empty() || std::find(list.begin(), list.end(), x) != list.end();
  };
  return has(o.methods, std::string(quant::MethodName(v.q.method))) && has(o.bits, v.q.bits) &&
         has(o.dims, v.q.dim);
}

double WeightedNorm(const std::vector<float>& a, const Layer& l) {
  if (l.hessian.empty()) {
    double s = 0;
    for (float x : a) s += double(x) * x;
    return s;
  }
  double s = 0;
  std::vector<double> ah(static_cast<size_t>(l.cols));
  for (int64_t r = 0; r < l.rows; ++r) {
    const float* row = &a[r * l.cols];
    for (int64_t j = 0; j < l.cols; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < l.cols; ++k) acc += row[k] * l.hessian[k * l.cols + j];
      s += acc * row[j];
    }
  }
  return s;
}

// Quantizes every layer with `v`; nullopt (and a note on stderr) if the
// method is unavailable or refuses the configuration.
std::optional<Totals> RunVariant(const std::vector<Layer>& layers, const Variant& v, int threads) {
  QuantizerConfig c = v.q;
  c.threads = threads;
  auto q = engine::MakeQuantizer(c);
  if (!q.ok()) {
    std::cerr << "skipped " << quant::MethodName(c.method) << " " << v.config << ": "
              << q.status().message() << "\n";
    return std::nullopt;
  }
  Totals t;
  for (const Layer& l : layers) {
    const engine::HessianView hv{l.hessian.data(), l.cols};
    const bool pass_h = v.use_hessian && !l.hessian.empty();
    const auto start = std::chrono::steady_clock::now();
    auto r = (*q)->Quantize(l.name, {l.w.data(), l.rows, l.cols}, pass_h ? &hv : nullptr);
    t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!r.ok()) {
      std::cerr << "failed " << l.name << " " << v.config << ": " << r.status().message() << "\n";
      return std::nullopt;
    }
    std::vector<float> delta(l.w.size());
    for (size_t i = 0; i < delta.size(); ++i) delta[i] = l.w[i] - r->dequantized[i];
    t.weights += static_cast<double>(r->accounting.weights);
    t.payload_bits += static_cast<double>(r->accounting.payload_bits);
    t.total_bits += static_cast<double>(r->accounting.total_bits);
    for (size_t i = 0; i < delta.size(); ++i) {
      t.err += double(delta[i]) * delta[i];
      t.ref += double(l.w[i]) * l.w[i];
    }
    t.herr += WeightedNorm(delta, l);
    t.href += WeightedNorm(l.w, l);
  }
  return t;
}

void PrintRow(const QualityOptions& o, const std::string& source, const Variant& v,
              const Totals& t) {
  const double bp = t.payload_bits / t.weights, bt = t.total_bits / t.weights;
  const double nmse = t.err / t.ref, proxy = t.herr / t.href;
  const double sqnr = -10 * std::log10(nmse), rd = std::pow(2.0, -2 * bp);
  const double mws = t.weights / t.seconds / 1e6;
  if (o.json) {
    nlohmann::ordered_json j = {{"source", source},      {"method", quant::MethodName(v.q.method)},
                                {"config", v.config},    {"bits", v.q.bits},
                                {"dim", v.q.dim},        {"bits_payload", bp},
                                {"bits_total", bt},      {"nmse", nmse},
                                {"sqnr_db", sqnr},       {"proxy_loss", proxy},
                                {"seconds", t.seconds},  {"mweights_per_s", mws},
                                {"rd_bound", rd},        {"threads", o.threads}};
    std::cout << j.dump() << std::endl;
    return;
  }
  std::cout << absl::StrFormat("%-11s %-5s %3d %-38s %6.3f %6.3f %8.5f %7.2f %8.5f %8.2f %8.3f %8.5f\n",
                               source, quant::MethodName(v.q.method), v.q.dim, v.config, bp, bt, nmse,
                               sqnr, proxy, t.seconds, mws, rd)
            << std::flush;
}

int RunQuality(const QualityOptions& o) {
  if (!o.json) {
    std::cout << absl::StrFormat("%-11s %-5s %3s %-38s %6s %6s %8s %7s %8s %8s %8s %8s\n",
                                 "source", "method", "d", "config", "b_pay", "b_tot", "nmse", "sqnr_dB", "proxy",
                                 "seconds", "Mw/s", "rd_bound");
  }
  for (const char* source : kSourceNames) {
    if (!o.sources.empty() &&
        std::find(o.sources.begin(), o.sources.end(), source) == o.sources.end()) {
      continue;
    }
    auto layers = LoadSource(source, o.fixtures);
    if (!layers.ok()) {
      std::cerr << "source " << source << ": " << layers.status().message() << "\n";
      return 1;
    }
    for (const Variant& v : Variants(!layers->front().hessian.empty())) {
      if (!Selected(o, v)) continue;
      if (auto t = RunVariant(*layers, v, o.threads)) PrintRow(o, source, v, *t);
    }
  }
  return 0;
}

}  // namespace

void RegisterQualityBench(CLI::App& app) {
  auto* cmd = app.add_subcommand("quality", "Quality vs bits for every method and source");
  auto o = std::make_shared<QualityOptions>();
  cmd->add_option("--source", o->sources, "gaussian, student_t, llm_like, stories260k");
  cmd->add_option("--method", o->methods, "glvq, rtn, gptq, e8p, pvq");
  cmd->add_option("--bits", o->bits, "Target bits per weight");
  cmd->add_option("--dim", o->dims, "Vector dimension (1 for scalar methods)");
  cmd->add_option("--threads", o->threads, "Quantizer threads (0 = all cores)")
      ->capture_default_str();
  cmd->add_option("--fixtures", o->fixtures, "Directory holding stories260K")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per row");
  cmd->callback([o] {
    if (const int rc = RunQuality(*o); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace glvq::bench
