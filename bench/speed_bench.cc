// `glvq-bench speed`: quantization throughput (million weights per second)
// for every method at 2 and 4 bits (e8p and pvq D = 8, 32, 128 at 2; pvq
// D = 32 also at 4), on one core and on all cores, on an LLM-like matrix
// with the plain weight-MSE objective (no Hessian). `--backend cuda` runs
// the methods the CUDA engine implements (worker/cuda/cuda_quantizer.h)
// on the GPUs instead; "threads" are then the host threads of its d × d
// algebra.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "bench/benchmarks.h"
#include "common/synthetic/example_model.h"
#include "nlohmann/json.hpp"
#include "worker/engine/quantizer.h"
#include "worker/service/engine_backend.h"

namespace glvq::bench {
namespace {

using quant::Method;

struct SpeedOptions {
  int64_t rows = 512;
  int64_t cols = 1024;
  bool json = false;
  std::string backend = "cpu";  // or "cuda"
};

struct SpeedCase {
  Method method;
  int bits;
  int dim;
};

std::vector<SpeedCase> Cases() {
  std::vector<SpeedCase> cases;
  for (int b : {2, 4}) {
    cases.push_back({Method::kRtn, b, 1});
    cases.push_back({Method::kGptq, b, 1});
    for (int d : {8, 32}) cases.push_back({Method::kGlvq, b, d});
  }
  cases.push_back({Method::kE8p, 2, 8});
  for (int d : {8, 32, 128}) cases.push_back({Method::kPvq, 2, d});
  cases.push_back({Method::kPvq, 4, 32});
  // trellis: `dim` is the window L; the search costs ∝ 2^L.
  for (int window : {8, 10, 12}) cases.push_back({Method::kTrellis, 2, window});
  return cases;
}

int RunSpeed(const SpeedOptions& o) {
  LlmLikeWeightOptions wo;
  wo.rows = o.rows;
  wo.cols = o.cols;
  const std::vector<float> w = MakeLlmLikeWeight(wo);
  // The worker's own engine choice: `cuda` without a usable GPU is refused.
  const auto backend = worker::ResolveLocalBackend(*worker::ParseBackendRequest(o.backend));
  if (!backend.ok()) {
    std::cerr << backend.status().message() << "\n";
    return 1;
  }
  const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (!o.json) {
    std::cout << absl::StrFormat("%-6s %4s %4s %8s %9s %10s   (%dx%d LLM-like, no Hessian, %s)\n",
                                 "method", "bits", "dim", "threads", "seconds", "Mweights/s",
                                 o.rows, o.cols, o.backend);
  }
  for (const SpeedCase& sc : Cases()) {
    for (int threads : {1, all}) {
      quant::QuantizerConfig c;
      c.method = sc.method;
      c.bits = sc.bits;
      c.dim = sc.dim;
      if (sc.method == Method::kTrellis) c.trellis.window = sc.dim;
      c.threads = threads;
      std::string engine;
      auto q = worker::MakeBackendQuantizer(*backend, c, &engine);
      if (q.ok() && engine != backend->Label()) {
        q = absl::UnimplementedError("the CUDA engine does not implement it");
      }
      if (!q.ok()) {
        std::cerr << "skipped " << quant::MethodName(sc.method) << ": " << q.status().message()
                  << "\n";
        break;
      }
      const auto start = std::chrono::steady_clock::now();
      auto r = (*q)->Quantize("speed.weight", {w.data(), o.rows, o.cols}, nullptr);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!r.ok()) {
        std::cerr << r.status().message() << "\n";
        return 1;
      }
      const double mws = static_cast<double>(o.rows * o.cols) / s / 1e6;
      if (o.json) {
        std::cout << nlohmann::ordered_json{{"backend", o.backend},
                                            {"method", quant::MethodName(sc.method)},
                                            {"bits", sc.bits}, {"dim", sc.dim},
                                            {"threads", threads}, {"seconds", s},
                                            {"mweights_per_s", mws}}
                         .dump()
                  << std::endl;
      } else {
        std::cout << absl::StrFormat("%-6s %4d %4d %8d %9.3f %10.3f\n",
                                     quant::MethodName(sc.method), sc.bits, sc.dim, threads, s,
                                     mws)
                  << std::flush;
      }
      if (all == 1) break;
    }
  }
  return 0;
}

}  // namespace

void RegisterSpeedBench(CLI::App& app) {
  auto* cmd = app.add_subcommand("speed", "Quantization throughput per method, 1 core and all");
  auto o = std::make_shared<SpeedOptions>();
  cmd->add_option("--rows", o->rows, "Matrix rows")->capture_default_str();
  cmd->add_option("--cols", o->cols, "Matrix columns")->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per row");
  cmd->add_option("--backend", o->backend, "Engine: cpu, or cuda (GPU: glvq, rtn, gptq, e8p)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->callback([o] {
    if (const int rc = RunSpeed(*o); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace glvq::bench
