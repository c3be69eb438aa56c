// glvq-bench decode: matrix–vector products at batch 1 from packed weights
// (kernels/gemv.h) against dense bf16 and f32 GEMV on the same shapes, in
// the same run. One row per (shape, kind); --json prints one object per row
// with keys method, bits, rows, cols, backend, seconds, speedup_vs_bf16
// (dense rows: method dense_bf16 / dense_f32).
//
// The dense baselines are plain loops with eight independent lanes per row
// (what GCC vectorises at -O3 without -ffast-math), the bf16 one widening
// each weight to F32 as it goes: the memory-bound reference a 2-bit kernel
// has to beat. Weights are random (never zeros); every timing is the median
// of --repeats runs after one warm-up, on one core.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench/benchmarks.h"
#include "kernels/gemv.h"
#include "nlohmann/json.hpp"

namespace glvq::bench {
namespace {

struct Options {
  bool json = false;
  bool large = false;
  int repeats = 7;
};

double MedianSeconds(int repeats, const std::function<void()>& run) {
  run();  // warm-up: page faults and caches out of the figures
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

void DenseF32(const std::vector<float>& w, const float* x, float* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w.data() + r * cols;
    float acc[8] = {};
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      for (int i = 0; i < 8; ++i) acc[i] += row[c + i] * x[c + i];
    }
    float sum = 0;
    for (; c < cols; ++c) sum += row[c] * x[c];
    for (float a : acc) sum += a;
    y[r] = sum;
  }
}

float Bf16ToF32(uint16_t v) {
  const uint32_t bits = uint32_t{v} << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

void DenseBf16(const std::vector<uint16_t>& w, const float* x, float* y, int64_t rows,
               int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* row = w.data() + r * cols;
    float acc[8] = {};
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      for (int i = 0; i < 8; ++i) acc[i] += Bf16ToF32(row[c + i]) * x[c + i];
    }
    float sum = 0;
    for (; c < cols; ++c) sum += Bf16ToF32(row[c]) * x[c];
    for (float a : acc) sum += a;
    y[r] = sum;
  }
}

// A random rtn tensor with `bits` in every 128-column group.
QuantizedTensor RandomRtn(int64_t rows, int64_t cols, int bits, std::mt19937_64& rng) {
  QuantizedTensor t;
  t.name = "bench";
  t.method = std::string(kMethodRtn);
  t.rows = rows, t.cols = cols, t.group_size = 128, t.dim = 1;
  t.bits.assign(static_cast<size_t>(t.NumGroups()), static_cast<uint8_t>(bits));
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  for (uint8_t& c : codes) c = static_cast<uint8_t>(code(rng));
  if (!PackGroupCodes(codes, &t).ok()) std::abort();
  std::uniform_real_distribution<float> u(0.01f, 0.1f);
  for (int64_t i = 0; i < t.NumGroups() * rows; ++i) {
    t.scale.push_back(u(rng));
    t.zero.push_back(float(1 << (bits - 1)));
  }
  return t;
}

// A random e8p tensor (128-column groups, every code valid).
QuantizedTensor RandomE8p(int64_t rows, int64_t cols, std::mt19937_64& rng) {
  QuantizedTensor t;
  t.name = "bench";
  t.method = std::string(kMethodE8p);
  t.rows = rows, t.cols = cols, t.group_size = 128, t.dim = 8;
  t.bits.assign(static_cast<size_t>(t.NumGroups()), 2);
  std::vector<uint16_t> codes(static_cast<size_t>(rows * cols / 8));
  for (uint16_t& c : codes) c = static_cast<uint16_t>(rng());
  if (!PackE8pCodes(codes, &t).ok()) std::abort();
  t.scale.assign(static_cast<size_t>(t.NumGroups()), 0.05f);
  return t;
}

struct Row {
  std::string method;
  double bits;
  int64_t rows, cols;
  double seconds, speedup_vs_bf16;
};

void Print(const Row& r, bool json) {
  if (json) {
    const nlohmann::ordered_json j = {{"method", r.method},   {"bits", r.bits},
                                      {"rows", r.rows},       {"cols", r.cols},
                                      {"backend", "cpu"},     {"seconds", r.seconds},
                                      {"speedup_vs_bf16", r.speedup_vs_bf16}};
    std::cout << j.dump() << std::endl;
  } else {
    std::printf("%-11s %5.1f %6lld x %-6lld %10.3f ms %8.2fx\n", r.method.c_str(), r.bits,
                static_cast<long long>(r.rows), static_cast<long long>(r.cols), r.seconds * 1e3,
                r.speedup_vs_bf16);
  }
}

void RunShape(int64_t rows, int64_t cols, const Options& o) {
  std::mt19937_64 rng(uint64_t(rows) * 131 + uint64_t(cols));
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows));
  for (float& v : x) v = normal(rng) * 50;
  std::vector<float> w32(static_cast<size_t>(rows * cols));
  for (float& v : w32) v = normal(rng);
  std::vector<uint16_t> w16(w32.size());
  for (size_t i = 0; i < w32.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &w32[i], sizeof bits);
    w16[i] = static_cast<uint16_t>(bits >> 16);
  }
  const double bf16 =
      MedianSeconds(o.repeats, [&] { DenseBf16(w16, x.data(), y.data(), rows, cols); });
  const double f32 =
      MedianSeconds(o.repeats, [&] { DenseF32(w32, x.data(), y.data(), rows, cols); });
  w32 = {};
  Print({"dense_bf16", 16, rows, cols, bf16, 1.0}, o.json);
  Print({"dense_f32", 32, rows, cols, f32, bf16 / f32}, o.json);
  for (int bits : {2, 3, 4}) {
    const QuantizedTensor t = RandomRtn(rows, cols, bits, rng);
    const double s = MedianSeconds(o.repeats, [&] {
      if (!kernels::Gemv(t, x, y).ok()) std::abort();
    });
    Print({"rtn", double(bits), rows, cols, s, bf16 / s}, o.json);
  }
  const QuantizedTensor e8p = RandomE8p(rows, cols, rng);
  const double s = MedianSeconds(o.repeats, [&] {
    if (!kernels::Gemv(e8p, x, y).ok()) std::abort();
  });
  Print({"e8p", 2.0, rows, cols, s, bf16 / s}, o.json);
}

}  // namespace

void RegisterDecodeBench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "decode", "Batch-1 GEMV from packed weights against dense bf16 and f32, one core");
  auto o = std::make_shared<Options>();
  cmd->add_flag("--json", o->json, "One JSON object per row");
  cmd->add_flag("--large", o->large, "Add the 8192x28672 shape (about 1 GB of f32 weights)");
  cmd->add_option("--repeats", o->repeats, "Timed runs per row (median)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->callback([o] {
    if (!o->json) std::printf("method       bits  rows x cols        time    vs bf16\n");
    std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 4096}, {4096, 11008}, {11008, 4096}};
    if (o->large) shapes.push_back({8192, 28672});
    for (const auto& [rows, cols] : shapes) RunShape(rows, cols, *o);
  });
}

}  // namespace glvq::bench
