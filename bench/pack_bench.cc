// `glvq-bench pack`: single-core throughput of PackCodes / UnpackCodes for
// every code width. Throughput is reported on unpacked codes (1 byte per
// code, the figure that matters to a decoder) and on packed bytes.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "bench/benchmarks.h"
#include "common/packed/bitpack.h"
#include "nlohmann/json.hpp"

namespace glvq::bench {
namespace {

struct PackOptions {
  double mcodes = 32;  // millions of codes per width
  int repeats = 5;
  bool json = false;
};

struct PackRow {
  int bits = 0;
  uint64_t codes = 0;
  uint64_t packed_bytes = 0;
  double pack_s = 0;    // best of the repeats
  double unpack_s = 0;  // best of the repeats
};

// Uniform codes from a fixed-seed xorshift: cheap, and the same every run.
std::vector<uint8_t> MakeCodes(uint64_t n, int bits) {
  std::vector<uint8_t> codes(n);
  uint64_t state = 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(bits);
  const unsigned mask = (1u << bits) - 1;
  for (uint8_t& c : codes) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    c = static_cast<uint8_t>((state >> 32) & mask);
  }
  return codes;
}

// Best wall time of `repeats` runs of `fn` (which must succeed).
double BestSeconds(int repeats, const std::function<absl::Status()>& fn) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = fn();
    const auto stop = std::chrono::steady_clock::now();
    if (!s.ok()) throw CLI::RuntimeError(std::string(s.message()), 1);
    best = std::min(best, std::chrono::duration<double>(stop - start).count());
  }
  return best;
}

PackRow MeasureWidth(int bits, uint64_t n, int repeats) {
  const std::vector<uint8_t> codes = MakeCodes(n, bits);
  std::vector<std::byte> packed(PackedBytes(n, bits));
  std::vector<uint8_t> unpacked(n);
  PackRow row{bits, n, packed.size(), 0, 0};
  row.pack_s = BestSeconds(repeats, [&] { return PackCodes(codes, bits, packed); });
  row.unpack_s = BestSeconds(repeats, [&] { return UnpackCodes(packed, bits, unpacked); });
  // Also keeps the compiler from discarding the work.
  if (unpacked != codes) throw CLI::RuntimeError("round trip mismatch", 1);
  return row;
}

double GBps(uint64_t bytes, double seconds) {
  return static_cast<double>(bytes) / seconds / 1e9;
}

void PrintJson(const PackRow& r) {
  nlohmann::json j = {{"bench", "pack"},
                      {"bits", r.bits},
                      {"codes", r.codes},
                      {"packed_bytes", r.packed_bytes},
                      {"pack_seconds", r.pack_s},
                      {"unpack_seconds", r.unpack_s},
                      {"pack_gbps_codes", GBps(r.codes, r.pack_s)},
                      {"unpack_gbps_codes", GBps(r.codes, r.unpack_s)},
                      {"pack_gbps_packed", GBps(r.packed_bytes, r.pack_s)},
                      {"unpack_gbps_packed", GBps(r.packed_bytes, r.unpack_s)}};
  std::printf("%s\n", j.dump().c_str());
}

void PrintHeader(const PackOptions& o) {
  std::printf("bit packing, one core, %.1f M codes per width, best of %d\n", o.mcodes,
              o.repeats);
  std::printf("GB/s of unpacked codes (1 byte/code); in brackets: GB/s of packed bytes\n\n");
  std::printf("%4s  %20s  %20s\n", "bits", "pack GB/s", "unpack GB/s");
}

void PrintTableRow(const PackRow& r) {
  std::printf("%4d  %9.2f [%8.2f]  %9.2f [%8.2f]\n", r.bits, GBps(r.codes, r.pack_s),
              GBps(r.packed_bytes, r.pack_s), GBps(r.codes, r.unpack_s),
              GBps(r.packed_bytes, r.unpack_s));
}

void RunPackBench(const PackOptions& o) {
  const auto n = static_cast<uint64_t>(o.mcodes * 1e6);
  if (!o.json) PrintHeader(o);
  for (int bits = 1; bits <= 8; ++bits) {
    const PackRow row = MeasureWidth(bits, n, o.repeats);
    if (o.json) {
      PrintJson(row);
    } else {
      PrintTableRow(row);
    }
    std::fflush(stdout);
  }
}

}  // namespace

void RegisterPackBench(CLI::App& app) {
  auto opts = std::make_shared<PackOptions>();
  CLI::App* sub = app.add_subcommand("pack", "bit packing/unpacking throughput, bits 1..8");
  sub->add_option("--mcodes", opts->mcodes, "millions of codes per bit width")
      ->check(CLI::Range(0.001, 4096.0));
  sub->add_option("--repeats", opts->repeats, "runs per measurement (best is kept)")
      ->check(CLI::Range(1, 1000));
  sub->add_flag("--json", opts->json, "one JSON object per row instead of a table");
  sub->callback([opts] { RunPackBench(*opts); });
}

}  // namespace glvq::bench
