// `glvq-bench shapes`: the engine over the linear layers of a synthetic
// model with real LLM shapes (Llama-2-70B: 80 layers; q/o 8192×8192, k/v
// 1024×8192, gate/up 28672×8192, down 8192×28672; one Hessian per distinct
// input), on the worker's backend (auto, cuda or cpu). Prints per kind of
// tensor the time and throughput and, for the whole model, total time,
// M weights/s and the achieved bandwidth against the measured copy
// bandwidth (bench/RESULTS.md records runs on a GPU).
//
// Synthetic data: each distinct shape's weight (LLM-like, heavy tails,
// outlier columns) and each input's Hessian (diagonal spread plus a
// low-rank term, PSD) are generated once and reused by every layer:
// generating 70B weights would take longer than quantizing them, and the
// engine's time does not depend on which values it sees beyond their
// statistics. Generation is not timed. `--layers N` runs N layers and
// extrapolates to the model's depth (the table says so).
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "bench/benchmarks.h"
#include "common/base/random.h"
#include "common/synthetic/example_model.h"
#include "worker/service/engine_backend.h"

namespace glvq::bench {
namespace {

struct LinearShape {
  const char* kind;   // q, k, v, o, gate, up, down
  int64_t rows;       // output features
  int64_t cols;       // input features
  const char* input;  // which Hessian: tensors with the same input share one
};

struct ModelShape {
  int layers;
  std::vector<LinearShape> linears;  // one layer's
};

// Llama-2 shapes (GQA with 8 KV heads for 70B); `tiny` is for tests.
const std::map<std::string, ModelShape>& ModelShapes() {
  static const auto* shapes = new std::map<std::string, ModelShape>{
      {"llama2-70b",
       {80,
        {{"q", 8192, 8192, "attn"}, {"k", 1024, 8192, "attn"}, {"v", 1024, 8192, "attn"},
         {"o", 8192, 8192, "o"}, {"gate", 28672, 8192, "mlp"}, {"up", 28672, 8192, "mlp"},
         {"down", 8192, 28672, "down"}}}},
      {"llama2-7b",
       {32,
        {{"q", 4096, 4096, "attn"}, {"k", 4096, 4096, "attn"}, {"v", 4096, 4096, "attn"},
         {"o", 4096, 4096, "o"}, {"gate", 11008, 4096, "mlp"}, {"up", 11008, 4096, "mlp"},
         {"down", 4096, 11008, "down"}}}},
      {"tiny",
       {2,
        {{"q", 128, 128, "attn"}, {"k", 32, 128, "attn"}, {"v", 32, 128, "attn"},
         {"o", 128, 128, "o"}, {"gate", 256, 128, "mlp"}, {"up", 256, 128, "mlp"},
         {"down", 128, 256, "down"}}}},
  };
  return *shapes;
}

struct ShapesOptions {
  std::string model = "llama2-70b";
  int layers = 0;  // 0: all
  std::string backend = "auto";
  std::string method = "glvq";  // or gptq, rtn (the scalar baselines)
  double bits = 2;
  int dim = 8;
  int group_size = 128;
  int iters = 20;
  int threads = 0;
  bool hessian = true;
};

// A PSD n × n Hessian like a layer's input statistics: D (I + U Uᵀ / r) D
// with log-normal channel scales D and a rank-r Gaussian U.
std::vector<double> SyntheticHessian(int64_t n, uint64_t seed) {
  constexpr int kRank = 8;
  Rng rng(seed);
  std::vector<double> d(n), u(n * kRank);
  for (double& x : d) x = std::exp(0.5 * rng.Normal());
  for (double& x : u) x = rng.Normal();
  std::vector<double> h(n * n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      double dot = 0;
      for (int r = 0; r < kRank; ++r) dot += u[i * kRank + r] * u[j * kRank + r];
      const double v = d[i] * d[j] * ((i == j ? 1.0 : 0.0) + dot / kRank);
      h[i * n + j] = v;
      h[j * n + i] = v;
    }
  }
  return h;
}

// Host memcpy bandwidth (read + write), the CPU backend's roofline.
double HostCopyBandwidth() {
  const size_t bytes = size_t{1} << 28;
  std::vector<char> src(bytes, 1), dst(bytes);
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst.data(), src.data(), bytes);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

// Bytes a tensor's quantization moves at the least, as TrafficModel says.
double ModelledTraffic(const quant::QuantizerConfig& c, const LinearShape& l,
                       const quant::QuantizeResult& r) {
  const double weights = static_cast<double>(l.rows * l.cols);
  switch (c.method) {
    case quant::Method::kGlvq: {
      double passes = 2.0 + c.glvq.refine_steps;  // scale/init and the final decode
      for (const quant::GroupStats& g : r.groups) passes += g.iterations / double(r.groups.size());
      return 4.0 * weights * passes;
    }
    case quant::Method::kGptq:  // the later columns, read and written per lazy batch
      return 16.0 * weights * (static_cast<double>(l.cols) / 128.0 / 2.0 + 1.0);
    default:
      return 4.0 * weights;
  }
}

const char* TrafficModel(quant::Method m) {
  switch (m) {
    case quant::Method::kGlvq:
      return "fp32 weights read once per alternation, refinement step, init and decode";
    case quant::Method::kGptq:
      return "fp64 weights right of each 128-column batch read and written once per batch";
    default:
      return "fp32 weights read once";
  }
}

struct KindTotals {
  int64_t tensors = 0;
  double weights = 0, seconds = 0, traffic_bytes = 0, nmse = 0;
};

int RunShapes(const ShapesOptions& o) {
  const ModelShape& shape = ModelShapes().at(o.model);
  const int layers = o.layers > 0 ? std::min(o.layers, shape.layers) : shape.layers;
  auto backend = worker::ResolveLocalBackend(*worker::ParseBackendRequest(o.backend));
  if (!backend.ok()) {
    std::cerr << "glvq-bench shapes: " << backend.status().message() << "\n";
    return 1;
  }
  quant::QuantizerConfig config;
  config.method = *quant::ParseMethod(o.method);
  const bool glvq = config.method == quant::Method::kGlvq;
  config.bits = o.bits;
  config.dim = glvq ? o.dim : 1;
  config.group_size = o.group_size;
  config.threads = o.threads;
  config.glvq.max_iters = o.iters;
  std::map<std::string, std::vector<float>> weights;
  std::map<std::string, std::vector<double>> hessians;
  for (const LinearShape& l : shape.linears) {
    const std::string key = absl::StrFormat("%dx%d", l.rows, l.cols);
    if (!weights.count(key)) {
      weights[key] = MakeLlmLikeWeight({.rows = l.rows, .cols = l.cols, .seed = weights.size() + 1});
    }
    if (o.hessian && !hessians.count(l.input)) {
      hessians[l.input] = SyntheticHessian(l.cols, 100 + hessians.size());
    }
  }
  std::map<std::string, KindTotals> kinds;
  std::string label;
  for (int layer = 0; layer < layers; ++layer) {
    for (const LinearShape& l : shape.linears) {
      auto q = worker::MakeBackendQuantizer(*backend, config, &label);
      if (!q.ok()) {
        std::cerr << "glvq-bench shapes: " << q.status().message() << "\n";
        return 1;
      }
      const std::vector<float>& w = weights[absl::StrFormat("%dx%d", l.rows, l.cols)];
      engine::HessianView h{o.hessian ? hessians[l.input].data() : nullptr, l.cols};
      const std::string name = absl::StrFormat("model.layers.%d.%s.weight", layer, l.kind);
      const auto t0 = std::chrono::steady_clock::now();
      auto r = (*q)->Quantize(name, {w.data(), l.rows, l.cols}, o.hessian ? &h : nullptr);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!r.ok()) {
        std::cerr << "glvq-bench shapes: " << name << ": " << r.status().message() << "\n";
        return 1;
      }
      KindTotals& k = kinds[l.kind];
      k.tensors += 1;
      k.weights += static_cast<double>(l.rows * l.cols);
      k.seconds += s;
      k.traffic_bytes += ModelledTraffic(config, l, *r);
      k.nmse += r->tensor.quality ? r->tensor.quality->nmse : 0.0;
    }
  }
  const absl::StatusOr<double> roof =
      backend->backend == v1::BACKEND_CUDA ? worker::DeviceCopyBandwidth(*backend)
                                           : absl::StatusOr<double>(HostCopyBandwidth());
  std::cout << absl::StrFormat(
      "%s, %d of %d layers, engine %s, %s %.2g bits d=%d group %d, %d iterations, %s\n",
      o.model, layers, shape.layers, label, o.method, o.bits, config.dim, o.group_size, o.iters,
      o.hessian ? "a Hessian per input" : "no Hessian");
  std::cout << absl::StrFormat("%-5s %7s %12s %10s %11s %9s %10s\n", "kind", "tensors", "Mweights",
                               "seconds", "Mweights/s", "GB/s", "mean_nmse");
  KindTotals all;
  for (const LinearShape& l : shape.linears) {
    const KindTotals& k = kinds[l.kind];
    std::cout << absl::StrFormat("%-5s %7d %12.2f %10.2f %11.2f %9.2f %10.5f\n", l.kind,
                                 k.tensors, k.weights / 1e6, k.seconds, k.weights / k.seconds / 1e6,
                                 k.traffic_bytes / k.seconds / 1e9,
                                 k.nmse / static_cast<double>(k.tensors));
    all.weights += k.weights;
    all.seconds += k.seconds;
    all.traffic_bytes += k.traffic_bytes;
  }
  const double whole = all.seconds * shape.layers / layers;
  std::cout << absl::StrFormat(
      "total: %.1f M weights in %.1f s = %.2f M weights/s; achieved %.1f GB/s (modelled "
      "traffic: %s)",
      all.weights / 1e6, all.seconds, all.weights / all.seconds / 1e6,
      all.traffic_bytes / all.seconds / 1e9, TrafficModel(config.method));
  if (roof.ok()) {
    std::cout << absl::StrFormat(" = %.0f %% of the measured copy bandwidth %.1f GB/s",
                                 100 * all.traffic_bytes / all.seconds / 1e9 / *roof, *roof);
  }
  std::cout << absl::StrFormat("\nwhole model (%d layers): %.1f min%s\n", shape.layers,
                               whole / 60, layers < shape.layers ? " (extrapolated)" : "");
  return 0;
}

}  // namespace

void RegisterShapesBench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "shapes", "A method over a synthetic model with real LLM shapes (Llama-2-70B by default)");
  auto o = std::make_shared<ShapesOptions>();
  cmd->add_option("--model", o->model, "llama2-70b, llama2-7b or tiny")
      ->check(CLI::IsMember({"llama2-70b", "llama2-7b", "tiny"}))
      ->capture_default_str();
  cmd->add_option("--layers", o->layers, "layers to run (0: all; fewer: extrapolated)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--backend", o->backend, "auto, cuda or cpu")
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}))
      ->capture_default_str();
  cmd->add_option("--method", o->method, "glvq, or a scalar baseline: gptq, rtn")
      ->check(CLI::IsMember({"glvq", "gptq", "rtn"}))
      ->capture_default_str();
  cmd->add_option("--bits", o->bits, "bits per weight")->capture_default_str();
  cmd->add_option("--dim", o->dim, "lattice dimension d")->capture_default_str();
  cmd->add_option("--group-size", o->group_size, "columns per group")->capture_default_str();
  cmd->add_option("--iters", o->iters, "GLVQ alternations (at most)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU engine threads (0: all cores)");
  cmd->add_flag("!--no-hessian", o->hessian, "plain weight MSE instead of a Hessian per input");
  cmd->callback([o] {
    if (const int rc = RunShapes(*o); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace glvq::bench
