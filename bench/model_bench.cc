// `glvq-bench model`: what quantization does to a real model. Quantizes every
// linear layer of the stories260K fixture with each method, bit width and
// Hessian mode, and reports the packed model's exact bits per weight and
// its next-token NLL, ΔNLL, KL(original ‖ quantized) and top-1 agreement.
// Hessians are calibrated on the first half of the token file, quality is
// measured on the second half (held out).
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "bench/benchmarks.h"
#include "bench/real_model_bench.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "model/calibration.h"
#include "model/eval.h"
#include "model/quantize_model.h"
#include "model/tokens.h"
#include "nlohmann/json.hpp"
#include "common/quant/config.h"

namespace glvq::bench {
namespace {

namespace fs = std::filesystem;
using quant::Method;
using quant::QuantizerConfig;

struct ModelOptions {
  std::string fixtures = "../shared/fixtures";
  std::vector<std::string> methods;
  std::vector<double> bits;
  bool json = false;
};

struct Case {
  std::string config;
  QuantizerConfig q;
  model::ConfigForWeight per_weight = nullptr;
};

// The stories260K rows keep the configurations they were first measured
// with: the paper preset, with each row's changes on top.
QuantizerConfig Make(Method m, double bits, int dim) {
  QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = m;
  c.bits = bits;
  c.dim = dim;
  c.group_size = 64;  // the fixture's matrices are 64 or 172 columns wide
  return c;
}

// SDBA realises 1.5 bits exactly only with half of a matrix's columns in
// 2-bit groups: a group size dividing cols / 2 does that (64 → 32,
// 172 → 43; no size but 2 does for both widths, so it is chosen per
// weight: the largest one up to the configured size).
QuantizerConfig HalfBitGroups(const QuantizerConfig& c, const std::string& /*name*/, int64_t cols) {
  QuantizerConfig out = c;
  for (int g = c.group_size; g >= c.dim && cols % 2 == 0; --g) {
    if ((cols / 2) % g == 0) {
      out.group_size = g;
      break;
    }
  }
  return out;  // otherwise SDBA reports the nearest achievable rates
}

// The 1.5-bit rows: GLVQ with SDBA (1- and 2-bit groups), PVQ by its
// pulse count. RTN, GPTQ and E8P have no fractional rates.
void AddOneAndAHalfBitCases(std::vector<Case>& cases) {
  QuantizerConfig faithful = Make(Method::kGlvq, 1.5, 8);
  faithful.sdba = true;
  cases.push_back({"d=8 mu=[10,255] sdba", faithful, HalfBitGroups});
  for (int dim : {8, 4}) {
    QuantizerConfig best = Make(Method::kGlvq, 1.5, dim);
    best.glvq.mu_min = best.glvq.mu_max = 0;
    best.rht = best.ldlq = best.sdba = true;
    cases.push_back({absl::StrFormat("d=%d mu=0 rht ldlq sdba", dim), best, HalfBitGroups});
  }
  cases.push_back({"D=32 lloyd-max", Make(Method::kPvq, 1.5, 32)});
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (int b : {2, 3, 4}) {
    QuantizerConfig mm = Make(Method::kRtn, b, 1);
    mm.rtn_variant = quant::RtnVariant::kMinMax;
    cases.push_back({"min-max", mm});
    cases.push_back({"clip-search", Make(Method::kRtn, b, 1)});
    cases.push_back({"clip grid", Make(Method::kGptq, b, 1)});
    cases.push_back({"d=8 mu=[10,255]", Make(Method::kGlvq, b, 8)});
    QuantizerConfig best = Make(Method::kGlvq, b, 8);
    best.glvq.mu_min = best.glvq.mu_max = 0;
    best.rht = best.ldlq = true;
    cases.push_back({"d=8 mu=0 +rht +ldlq", best});
    QuantizerConfig defaults;  // the best preset
    defaults.bits = b;
    defaults.group_size = 64;
    cases.push_back({"default (best preset)", defaults});
  }
  cases.push_back({"rht ldlq", Make(Method::kE8p, 2, 8)});
  for (int b : {2, 3, 4}) {
    cases.push_back({"D=32 lloyd-max", Make(Method::kPvq, b, 32)});
    QuantizerConfig quantile = Make(Method::kPvq, b, 32);
    quantile.pvq.gain_levels = quant::PvqGainLevels::kBetaQuantile;
    cases.push_back({"D=32 beta-quantile", quantile});
  }
  AddOneAndAHalfBitCases(cases);
  return cases;
}

bool Selected(const ModelOptions& o, const Case& c) {
  auto has = [](const auto& list, const auto& x) {
    return list.empty() || std::find(list.begin(), list.end(), x) != list.end();
  };
  return has(o.methods, std::string(quant::MethodName(c.q.method))) && has(o.bits, c.q.bits);
}

void PrintHeader() {
  std::cout << absl::StrFormat("%-5s %-22s %-4s %5s %6s %8s %8s %8s %7s %8s\n", "method", "config",
                               "H", "bits", "b_tot", "nll", "dnll", "kl", "top1", "seconds");
}

absl::Status RunModel(const ModelOptions& o) {
  const fs::path dir = fs::path(o.fixtures) / "stories260K";
  ASSIGN_OR_RETURN(const model::LlamaModel original, model::LlamaModel::LoadSafetensors(dir));
  ASSIGN_OR_RETURN(auto tokens,
                   model::ReadTokenFile(dir / "eval_tokens_seed1234.txt", original.config().vocab_size));
  const size_t half = tokens.size() / 2;
  const std::vector<model::TokenSequence> calib(tokens.begin(), tokens.begin() + half);
  const std::vector<model::TokenSequence> held_out(tokens.begin() + half, tokens.end());
  ASSIGN_OR_RETURN(const model::EvalResult base, model::Evaluate(original, held_out));

  const fs::path scratch = fs::temp_directory_path() / absl::StrFormat("glvq-bench-model-%d", ::getpid());
  fs::remove_all(scratch);
  fs::create_directories(scratch);
  ASSIGN_OR_RETURN(const model::HessianAccumulator acc, model::Calibrate(original, calib));
  RETURN_IF_ERROR(model::WriteHessians(scratch / "hessians", acc));
  ASSIGN_OR_RETURN(const SafetensorsModel hessians, SafetensorsModel::Open(scratch / "hessians"));

  if (!o.json) {
    std::cout << absl::StrFormat("stories260K, %d held-out sequences: original NLL %.6f\n",
                                 held_out.size(), base.nll);
    PrintHeader();
  }
  int run = 0;
  for (const Case& c : Cases()) {
    if (!Selected(o, c)) continue;
    for (bool with_h : {false, true}) {
      const fs::path out = scratch / absl::StrFormat("packed-%d", run++);
      const auto start = std::chrono::steady_clock::now();
      const absl::Status s =
          model::QuantizeModel(dir, out, c.q, with_h ? &hessians : nullptr, c.per_weight);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!s.ok()) {
        std::cerr << quant::MethodName(c.q.method) << " " << c.config << ": " << s.message() << "\n";
        continue;
      }
      ASSIGN_OR_RETURN(const PackedModel packed, PackedModel::Open(out));
      ASSIGN_OR_RETURN(const model::LlamaModel q, model::LlamaModel::LoadPacked(out));
      ASSIGN_OR_RETURN(const model::EvalResult r, model::Evaluate(q, held_out, &original));
      const double bt = packed.totals().TotalPerWeight();
      if (o.json) {
        std::cout << nlohmann::ordered_json{{"method", quant::MethodName(c.q.method)},
                                            {"config", c.config}, {"hessian", with_h},
                                            {"bits", c.q.bits}, {"bits_total", bt},
                                            {"nll", r.nll}, {"dnll", r.nll - base.nll},
                                            {"kl", *r.kl}, {"top1", *r.top1},
                                            {"seconds", seconds}}
                         .dump()
                  << std::endl;
      } else {
        std::cout << absl::StrFormat("%-5s %-22s %-4s %5.2f %6.3f %8.4f %8.4f %8.4f %7.4f %8.2f\n",
                                     quant::MethodName(c.q.method), c.config,
                                     with_h ? "cal" : "I", c.q.bits, bt, r.nll, r.nll - base.nll,
                                     *r.kl, *r.top1, seconds)
                  << std::flush;
      }
      fs::remove_all(out);
    }
  }
  fs::remove_all(scratch);
  return absl::OkStatus();
}

}  // namespace

void RegisterModelBench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "model",
      "Model-level quality (NLL, ΔNLL, KL, top-1) of every method: on the stories260K fixture, "
      "or with --model smollm2 on a real LLM and real text (scripts/fetch-models.sh first)");
  auto o = std::make_shared<ModelOptions>();
  auto real = std::make_shared<RealModelOptions>();
  auto which = std::make_shared<std::string>("stories260k");
  cmd->add_option("--model", *which, "stories260k (the fixture) or smollm2 (the real model)")
      ->check(CLI::IsMember({"stories260k", "smollm2"}))
      ->capture_default_str();
  cmd->add_option("--fixtures", o->fixtures, "Directory holding stories260K")->capture_default_str();
  cmd->add_option("--model-dir", real->model_dir,
                  "smollm2: checkpoint with calib.tokens and eval.tokens")
      ->capture_default_str();
  cmd->add_option("--peers", real->peers,
                  "smollm2: llama.cpp rows from scripts/llama-cpp-peer.sh (skipped if absent)")
      ->capture_default_str();
  cmd->add_option("--config", real->configs, "smollm2: only configs containing this text");
  cmd->add_option("--eval-sequences", real->eval_sequences,
                  "smollm2: held-out sequences evaluated, the first of eval.tokens (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--threads", real->threads, "smollm2: tensors quantized at once (0: all cores)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--method", o->methods, "glvq, rtn, gptq, e8p, pvq (smollm2: also llama.cpp)");
  cmd->add_option("--bits", o->bits, "Target bits per weight");
  cmd->add_flag("--json", o->json, "One JSON object per row");
  cmd->callback([o, real, which] {
    absl::Status s;
    if (*which == "smollm2") {
      real->methods = o->methods;
      real->bits = o->bits;
      real->json = o->json;
      s = RunRealModel(*real);
    } else {
      s = RunModel(*o);
    }
    if (!s.ok()) {
      std::cerr << "glvq-bench model: " << s.message() << "\n";
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace glvq::bench
