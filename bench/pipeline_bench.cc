// glvq-bench pipeline: where the CPU time of quantizing a model goes, by
// stage, for each method. One thread does every stage in order for each
// weight, and each stage's CPU seconds are that thread's
// (common/base/cpu_time.h), so the shares add up to the whole:
//
//   read       open the source, convert the weight to F32
//   hessian    read the weight's Hessian (F64) from the calibration file
//   prepare    engine: checks, Hessian symmetry, damping and PD check
//   transform  engine: randomized Hadamard transform of W and H
//   search     engine: the method proper
//   decode     engine: validation and reference decode of the result
//   measure    engine: quality (NMSE, proxy loss, top error) and accounting
//   write      the packed model: components, CRC32C, safetensors, copying
//              the pass-through tensors, re-reading it to verify
//
// The service's own stages (gRPC, staging, journal) are not in it. --json
// prints one object per (method, stage) with keys method, stage,
// cpu_seconds, share, and a "total" row per method with weights and
// weights_per_second.
#include <filesystem>
#include <memory>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/benchmarks.h"
#include "common/base/cpu_time.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "common/quant/config.h"
#include "common/quant/packed_config.h"
#include "model/calibration.h"
#include "nlohmann/json.hpp"
#include "worker/engine/quantizer.h"

namespace glvq::bench {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::string model_dir = "out/models/smollm2";
  std::string hessians;  // default: <model_dir>/hessians if it exists
  std::vector<std::string> methods = {"rtn", "gptq", "e8p", "pvq", "glvq", "trellis"};
  double bits = 2;
  int tensors = 7;
  bool json = false;
};

constexpr const char* kStages[] = {"read",   "hessian", "prepare", "transform",
                                   "search", "decode",  "measure", "write"};
constexpr int kNumStages = 8;

struct Profile {
  double seconds[kNumStages] = {};
  uint64_t weights = 0;
};

// The first `limit` (0: all) 2-D "*_proj.weight" tensors, in name order.
std::vector<std::string> Weights(const SafetensorsModel& source, int limit) {
  std::vector<std::string> names;
  for (const std::string& name : source.tensor_names()) {
    if (limit > 0 && static_cast<int>(names.size()) == limit) break;
    const TensorEntry* e = source.Find(name);
    if (name.find("_proj.weight") != std::string::npos && e->shape.size() == 2) {
      names.push_back(name);
    }
  }
  return names;
}

absl::StatusOr<Profile> RunMethod(const Options& o, quant::Method method,
                                  const SafetensorsModel* hessians, const fs::path& out) {
  quant::QuantizerConfig config;
  config.method = method;
  config.bits = o.bits;
  config.dim = method == quant::Method::kRtn || method == quant::Method::kGptq ? 1 : 8;
  config.group_size = quant::DefaultGroupSize(method);
  config.threads = 1;  // one thread: its CPU clock sees all the work
  ASSIGN_OR_RETURN(const auto quantizer, engine::MakeQuantizer(config));
  Profile prof;
  double mark = ThreadCpuSeconds();
  auto lap = [&](int stage) {
    const double now = ThreadCpuSeconds();
    prof.seconds[stage] += now - mark;
    mark = now;
  };
  ASSIGN_OR_RETURN(const SafetensorsModel source, SafetensorsModel::Open(o.model_dir));
  std::vector<QuantizedTensor> quantized;
  for (const std::string& name : Weights(source, o.tensors)) {
    ASSIGN_OR_RETURN(const TensorView view, source.Get(name));
    std::vector<float> w(static_cast<size_t>(view.NumElements()));
    RETURN_IF_ERROR(ConvertToF32(view.dtype, view.data, w));
    lap(0);
    std::optional<model::WeightHessian> h;
    if (hessians != nullptr) {
      ASSIGN_OR_RETURN(h, model::LoadHessianFor(*hessians, name));
    }
    const engine::HessianView hv{h ? h->data.data() : nullptr, h ? h->n : 0};
    lap(1);
    ASSIGN_OR_RETURN(quant::QuantizeResult r,
                     quantizer->Quantize(name, {w.data(), view.shape[0], view.shape[1]},
                                         h ? &hv : nullptr));
    lap(6);  // whatever the engine did outside its stages, then its stages below
    const quant::StageSeconds& s = r.seconds;
    const double engine = s.prepare + s.transform + s.search + s.decode + s.measure;
    prof.seconds[6] -= engine;
    prof.seconds[2] += s.prepare;
    prof.seconds[3] += s.transform;
    prof.seconds[4] += s.search;
    prof.seconds[5] += s.decode;
    prof.seconds[6] += s.measure;
    prof.weights += static_cast<uint64_t>(view.NumElements());
    quantized.push_back(std::move(r.tensor));
  }
  mark = ThreadCpuSeconds();
  RETURN_IF_ERROR(
      WritePackedModel(out, source, quantized, quant::PackedQuantizationConfig(config)));
  lap(7);
  return prof;
}

void Print(const Options& o, const std::string& method, const Profile& p) {
  double total = 0;
  for (double s : p.seconds) total += s;
  for (int i = 0; i < kNumStages; ++i) {
    const double share = total > 0 ? p.seconds[i] / total : 0;
    if (o.json) {
      std::cout << nlohmann::ordered_json{{"method", method},
                                          {"stage", kStages[i]},
                                          {"cpu_seconds", p.seconds[i]},
                                          {"share", share}}
                       .dump()
                << "\n";
    } else {
      std::cout << absl::StrFormat("%-8s %-10s %9.3f %6.1f %%\n", method, kStages[i],
                                   p.seconds[i], 100 * share);
    }
  }
  const double rate = total > 0 ? static_cast<double>(p.weights) / total : 0;
  if (o.json) {
    std::cout << nlohmann::ordered_json{{"method", method},     {"stage", "total"},
                                        {"cpu_seconds", total}, {"share", 1.0},
                                        {"weights", p.weights}, {"weights_per_second", rate}}
                     .dump()
              << std::endl;
  } else {
    std::cout << absl::StrFormat("%-8s %-10s %9.3f  %.2f M weights/CPU-s\n", method, "total",
                                 total, rate / 1e6)
              << std::flush;
  }
}

absl::Status Run(const Options& o) {
  std::optional<SafetensorsModel> hessians;
  const fs::path hdir =
      o.hessians.empty() ? fs::path(o.model_dir) / "hessians" : fs::path(o.hessians);
  if (fs::exists(hdir)) {
    ASSIGN_OR_RETURN(hessians, SafetensorsModel::Open(hdir));
  }
  if (!o.json) {
    std::cout << absl::StrFormat("%s, %s tensors, %g bits, Hessians: %s\n", o.model_dir,
                                 o.tensors > 0 ? absl::StrCat(o.tensors) : "all", o.bits,
                                 hessians ? hdir.string() : "none");
  }
  const fs::path scratch =
      fs::temp_directory_path() / absl::StrFormat("glvq-bench-pipeline-%d", ::getpid());
  for (const std::string& name : o.methods) {
    const std::optional<quant::Method> method = quant::ParseMethod(name);
    if (!method) return absl::InvalidArgumentError(absl::StrCat("unknown method ", name));
    fs::remove_all(scratch);
    ASSIGN_OR_RETURN(const Profile p,
                     RunMethod(o, *method, hessians ? &*hessians : nullptr, scratch));
    Print(o, name, p);
  }
  fs::remove_all(scratch);
  return absl::OkStatus();
}

}  // namespace

void RegisterPipelineBench(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "pipeline", "CPU seconds by stage (read, Hessian, engine stages, write) for each method");
  cmd->add_option("--model-dir", o->model_dir, "A checkpoint (scripts/fetch-models.sh)")
      ->capture_default_str();
  cmd->add_option("--hessians", o->hessians,
                  "glvq calibrate output (default: <model-dir>/hessians if present)");
  cmd->add_option("--method", o->methods, "Methods to profile")->capture_default_str();
  cmd->add_option("--bits", o->bits, "Target bits per weight")->capture_default_str();
  cmd->add_option("--tensors", o->tensors,
                  "Profile the first N projection weights in name order (0: all; 7: one layer)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per (method, stage)");
  cmd->footer(
      "Examples:\n"
      "  glvq-bench pipeline --method rtn gptq --tensors 7\n"
      "  glvq-bench pipeline --tensors 0 --json   # the whole model");
  cmd->callback([o] {
    if (absl::Status s = Run(*o); !s.ok()) {
      std::cerr << "glvq-bench pipeline: " << s.message() << "\n";
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace glvq::bench
