// `glvq-bench model --model smollm2`: the real-model yardstick. Quantizes
// every linear layer of SmolLM2-135M-Instruct (scripts/fetch-models.sh puts
// it, with calibration and held-out evaluation text, under
// out/models/smollm2) with each method and configuration, always with
// Hessians from the calibration text, and evaluates NLL, ΔNLL, KL and top-1
// on the held-out text. llama.cpp rows written by scripts/llama-cpp-peer.sh
// are evaluated by the same harness in the same run.
#include "bench/real_model_bench.h"

#include <chrono>
#include <fstream>
#include <iostream>

#include "absl/strings/str_format.h"
#include "common/base/glob.h"
#include "common/base/parallel.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "model/calibration.h"
#include "model/eval.h"
#include "model/finetune.h"
#include "model/quantize_model.h"
#include "model/sequential.h"
#include "model/tokens.h"
#include "nlohmann/json.hpp"

namespace glvq::bench {
namespace {

namespace fs = std::filesystem;
using quant::Method;
using quant::QuantizerConfig;

struct RealCase {
  std::string config;
  QuantizerConfig q;
  // Layer by layer on the quantized model's own activations
  // (model/sequential.h) instead of the original's Hessians.
  bool sequential = false;
  // Per-weight settings (e.g. more bits for some tensors), or null.
  model::ConfigForWeight per_weight = nullptr;
  // Then `glvq finetune`'s steps on calib.tokens (0: none; model/finetune.h).
  int64_t finetune_steps = 0;
};

QuantizerConfig Base(Method m, double bits, int dim) {
  QuantizerConfig c;  // the best preset: the defaults
  c.method = m;
  c.bits = bits;
  c.dim = dim;
  c.group_size = quant::DefaultGroupSize(m);
  return c;
}

QuantizerConfig Paper(Method m, double bits, int dim) {
  QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = m;
  c.bits = bits;
  c.dim = dim;
  return c;
}

// The GLVQ steps from the paper to the default, each alone on top of the
// previous best (µ = 0 + RHT + LDLQ): the "before → after" rows.
QuantizerConfig GlvqMu0(double b) {
  QuantizerConfig mu0 = Base(Method::kGlvq, b, 8);
  mu0.glvq.mu_min = mu0.glvq.mu_max = 0;
  mu0.glvq.mu_grid = 0;
  mu0.glvq.row_gain = false;
  return mu0;
}

// µ = 0 + RHT + LDLQ is the default itself (the "default" row), so the
// steps are the changes on top of it.
void AddGlvqSteps(double b, std::vector<RealCase>& cases) {
  const QuantizerConfig mu0 = GlvqMu0(b);
  QuantizerConfig grid = mu0;
  grid.glvq.mu_max = 5;
  grid.glvq.mu_grid = quant::GlvqOptions{}.mu_grid;
  cases.push_back({"mu-grid[0,5] rht ldlq", grid});
  QuantizerConfig gain = mu0;
  gain.glvq.row_gain = true;
  cases.push_back({"mu=0 rht ldlq row-gain", gain});
}

// Ordered by what the table needs first: each method's default at 2–4
// bits, then the baselines, then the 2-bit steps from the paper's GLVQ to
// the default (each change alone) and trellis's fractional rate.
std::vector<RealCase> RealCases() {
  std::vector<RealCase> cases;
  for (int b : {2, 3, 4}) {
    cases.push_back({"default", Base(Method::kGlvq, b, 8)});
    cases.push_back({"L=12 default", Base(Method::kTrellis, b, 1)});
  }
  cases.push_back({"default", Base(Method::kE8p, 2, 8)});
  for (int b : {2, 3, 4}) {
    cases.push_back({"default", Base(Method::kGptq, b, 1)});
    cases.push_back({"D=8 default", Base(Method::kPvq, b, 8)});
    cases.push_back({"default", Base(Method::kRtn, b, 1)});
    QuantizerConfig mm = Paper(Method::kRtn, b, 1);
    mm.rtn_variant = quant::RtnVariant::kMinMax;
    cases.push_back({"min-max", mm});
    // The µ grid against the default's µ = 0, at the widths where
    // companding could pay (the 2-bit pair is in the steps below).
    if (b > 2) {
      QuantizerConfig grid = GlvqMu0(b);
      grid.glvq.mu_max = 5;
      grid.glvq.mu_grid = quant::GlvqOptions{}.mu_grid;
      cases.push_back({"mu-grid[0,5] rht ldlq", grid});
    }
  }
  cases.push_back({"clip-search (paper)", Paper(Method::kRtn, 2, 1)});
  cases.push_back({"paper", Paper(Method::kGlvq, 2, 8)});
  AddGlvqSteps(2, cases);
  // The layouts before 2-D tiles: each row of a group one sequence.
  QuantizerConfig rows32 = Base(Method::kTrellis, 2, 1);
  rows32.group_size = 32;
  rows32.trellis.tile_rows = 1;
  cases.push_back({"L=12 group 32 by rows", rows32});
  QuantizerConfig wide = rows32;
  wide.group_size = 128;  // longer sequences, wider LDLQ blocks
  cases.push_back({"L=12 group 128 by rows", wide});
  // The gain refit against none, at every width (the default refits).
  for (int b : {2, 3, 4}) {
    QuantizerConfig plain = Base(Method::kTrellis, b, 1);
    plain.refit_scales = false;
    cases.push_back({"L=12 no-refit", plain});
  }
  // Mixed precision as spec.tensors.overrides gives it: the value
  // projections (3 % of the weights) one bit wider.
  const model::ConfigForWeight wider_v = [](QuantizerConfig q, const std::string& name, int64_t) {
    if (GlobMatch("*v_proj*", name)) q.bits += 1;
    return q;
  };
  cases.push_back({"L=12 default, v_proj 3 bits", Base(Method::kTrellis, 2, 1), false, wider_v});
  // Fine-tuning the stored gains and norms (glvq finetune, 150 steps of
  // 2 windows of 256 tokens) after the best rows above.
  constexpr int64_t kSteps = 150;
  cases.push_back({"L=12 default, v_proj 3 bits, finetune", Base(Method::kTrellis, 2, 1), false,
                   wider_v, kSteps});
  for (int b : {3, 4}) {
    cases.push_back(
        {"L=12 default, finetune", Base(Method::kTrellis, b, 1), false, nullptr, kSteps});
  }
  cases.push_back({"default, finetune", Base(Method::kE8p, 2, 8), false, nullptr, kSteps});
  QuantizerConfig frac = Base(Method::kTrellis, 2.5, 1);
  frac.sdba = true;
  cases.push_back({"L=12 sdba", frac});
  // Sequential calibration against the same methods on the original's
  // Hessians (the rows above); measured within noise (docs/quality.md).
  cases.push_back({"default sequential", Base(Method::kE8p, 2, 8), true});
  cases.push_back({"L=12 default sequential", Base(Method::kTrellis, 2, 1), true});
  return cases;
}

struct Row {
  std::string method, config;
  double bits = 0, bits_total = 0, seconds = 0;
  int threads = 0;
  model::EvalResult eval;
};

void PrintRow(const RealModelOptions& o, const Row& r, double base_nll) {
  // (base_nll: the original's NLL on the same tokens, from the cached predictions)
  if (o.json) {
    std::cout << nlohmann::ordered_json{{"method", r.method},   {"config", r.config},
                                        {"bits", r.bits},       {"bits_total", r.bits_total},
                                        {"nll", r.eval.nll},    {"dnll", r.eval.nll - base_nll},
                                        {"kl", *r.eval.kl},     {"top1", *r.eval.top1},
                                        {"seconds", r.seconds}, {"threads", r.threads}}
                     .dump()
              << std::endl;
    return;
  }
  std::cout << absl::StrFormat("%-9s %-24s %5.2f %6.3f %8.4f %+8.4f %8.4f %7.4f %8.1f %3d\n",
                               r.method, r.config, r.bits, r.bits_total, r.eval.nll,
                               r.eval.nll - base_nll, *r.eval.kl, *r.eval.top1, r.seconds,
                               r.threads)
            << std::flush;
}

bool Selected(const RealModelOptions& o, const std::string& method, const std::string& config,
              double bits) {
  auto has = [](const auto& list, const auto& x) {
    return list.empty() || std::find(list.begin(), list.end(), x) != list.end();
  };
  const bool config_ok =
      o.configs.empty() || std::any_of(o.configs.begin(), o.configs.end(), [&](const auto& c) {
        return config.find(c) != std::string::npos;
      });
  return has(o.methods, method) && has(o.bits, bits) && config_ok;
}

// Hessians of the calibration text, written once to `dir` and reused.
absl::StatusOr<SafetensorsModel> HessiansFor(const model::LlamaModel& original,
                                             const fs::path& model_dir, const fs::path& dir) {
  if (!fs::exists(dir)) {
    ASSIGN_OR_RETURN(
        auto calib, model::ReadTokenFile(model_dir / "calib.tokens", original.config().vocab_size));
    std::cerr << "calibrating on " << model::CountTokens(calib) << " tokens ...\n";
    ASSIGN_OR_RETURN(const model::HessianAccumulator acc, model::Calibrate(original, calib));
    RETURN_IF_ERROR(model::WriteHessians(dir, acc, {{"tokens", "calib.tokens"}}));
  }
  return SafetensorsModel::Open(dir);
}

// The peers' rows (scripts/llama-cpp-peer.sh): each names a dequantized
// checkpoint, evaluated here like glvq's own.
absl::Status RunPeers(const RealModelOptions& o, const model::ReferencePredictions& original,
                      std::span<const model::TokenSequence> held_out, double base_nll) {
  std::ifstream in(o.peers);
  if (!in) return absl::OkStatus();  // no llama.cpp build: no peer rows
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("dir") || !j.contains("bits_total")) {
      return absl::InvalidArgumentError(absl::StrCat(o.peers, ": not a peer row: ", line));
    }
    Row r;
    r.method = j.value("method", "llama.cpp");
    r.config = j.value("config", "");
    r.bits = j.value("bits", 0.0);
    if (!Selected(o, r.method, r.config, r.bits)) continue;
    r.bits_total = j["bits_total"].get<double>();
    r.seconds = j.value("quantize_cpu_seconds", 0.0);
    r.threads = 1;  // CPU-seconds: comparable with seconds × threads
    const fs::path dir = j["dir"].get<std::string>();  // relative: to the working directory
    ASSIGN_OR_RETURN(const model::LlamaModel q, model::LlamaModel::LoadSafetensors(dir));
    ASSIGN_OR_RETURN(r.eval, model::Evaluate(q, held_out, original));
    PrintRow(o, r, base_nll);
  }
  return absl::OkStatus();
}

// `glvq finetune` of packed model `in` into `out` on the calibration text.
absl::Status Finetune(const model::LlamaModel& original, const fs::path& model_dir,
                      const SafetensorsModel& hessians, std::span<const model::TokenSequence> calib,
                      int64_t steps, int threads, const fs::path& in, const fs::path& out) {
  ASSIGN_OR_RETURN(const PackedModel packed, PackedModel::Open(in));
  ASSIGN_OR_RETURN(model::TunableLlama student, model::LoadTunable(packed));
  model::FinetuneOptions o;
  o.steps = steps;
  o.threads = threads;
  ASSIGN_OR_RETURN(const model::FinetuneReport r, model::Finetune(original, student, calib, o));
  ASSIGN_OR_RETURN(const SafetensorsModel files, SafetensorsModel::Open(model_dir));
  return model::WriteFinetuned(packed, student, {files, original, &hessians}, o, r, out);
}

}  // namespace

absl::Status RunRealModel(const RealModelOptions& o) {
  const fs::path dir = o.model_dir;
  ASSIGN_OR_RETURN(const model::LlamaModel original, model::LlamaModel::LoadSafetensors(dir));
  ASSIGN_OR_RETURN(auto held_out,
                   model::ReadTokenFile(dir / "eval.tokens", original.config().vocab_size));
  if (o.eval_sequences > 0 && held_out.size() > static_cast<size_t>(o.eval_sequences)) {
    held_out.resize(static_cast<size_t>(o.eval_sequences));
  }
  // The original runs once; every row is compared with its predictions.
  ASSIGN_OR_RETURN(const model::ReferencePredictions reference, model::Predict(original, held_out));
  model::EvalResult base;
  base.nll = reference.nll;
  ASSIGN_OR_RETURN(const SafetensorsModel hessians, HessiansFor(original, dir, dir / "hessians"));
  ASSIGN_OR_RETURN(const auto calib,
                   model::ReadTokenFile(dir / "calib.tokens", original.config().vocab_size));
  const int threads = ResolveThreads(o.threads, 1 << 20);
  if (!o.json) {
    std::cout << absl::StrFormat(
        "%s, %d held-out sequences (%d tokens), Hessians from calib.tokens: original NLL %.4f\n",
        dir.string(), held_out.size(), model::CountTokens(held_out), base.nll);
    std::cout << absl::StrFormat("%-9s %-24s %5s %6s %8s %8s %8s %7s %8s %3s\n", "method", "config",
                                 "bits", "b_tot", "nll", "dnll", "kl", "top1", "seconds", "thr");
  }
  // The peers first: they cost one forward pass each.
  RETURN_IF_ERROR(RunPeers(o, reference, held_out, base.nll));
  const fs::path scratch =
      fs::temp_directory_path() / absl::StrFormat("glvq-bench-real-%d", ::getpid());
  fs::remove_all(scratch);
  int run = 0;
  for (const RealCase& c : RealCases()) {
    const std::string method = quant::MethodName(c.q.method);
    if (!Selected(o, method, c.config, c.q.bits)) continue;
    QuantizerConfig q = c.q;
    q.threads = threads;
    const fs::path out = scratch / absl::StrFormat("packed-%d", run++);
    const auto start = std::chrono::steady_clock::now();
    const absl::Status s = c.sequential
                               ? model::QuantizeModelSequential(dir, out, q, calib)
                               : model::QuantizeModel(dir, out, q, &hessians, c.per_weight);
    if (!s.ok()) {
      std::cerr << method << " " << c.config << ": " << s.message() << "\n";
      continue;
    }
    Row r{method,
          c.config,
          q.bits,
          0,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
          threads,
          {}};
    const fs::path tuned = out.string() + "-finetune";
    if (c.finetune_steps > 0) {
      RETURN_IF_ERROR(
          Finetune(original, dir, hessians, calib, c.finetune_steps, threads, out, tuned));
      r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    const fs::path result = c.finetune_steps > 0 ? tuned : out;
    ASSIGN_OR_RETURN(const PackedModel packed, PackedModel::Open(result));
    r.bits_total = packed.totals().TotalPerWeight();
    ASSIGN_OR_RETURN(const model::LlamaModel qm, model::LlamaModel::LoadPacked(result));
    ASSIGN_OR_RETURN(r.eval, model::Evaluate(qm, held_out, reference));
    PrintRow(o, r, base.nll);
    fs::remove_all(out);
    fs::remove_all(tuned);
  }
  fs::remove_all(scratch);
  return absl::OkStatus();
}

}  // namespace glvq::bench
