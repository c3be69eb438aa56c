// fuzz_seeds DIR: writes valid seed inputs for the fuzz targets whose inputs
// are binary (task_result_fuzz, packed_format_fuzz) into DIR/<target>/, made
// by the real engine and encoders from fuzz_cases.h's fixed configurations.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/base/crc32c.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "common/packed/pvq_tensor.h"
#include "common/rpc/result_codec.h"
#include "common/safetensors/writer.h"
#include "fuzz/fuzz_cases.h"
#include "worker/engine/group_range.h"
#include "worker/engine/quantizer.h"

namespace fs = std::filesystem;

namespace {

void Write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<float> Weights() {
  glvq::Rng rng(11);
  std::vector<float> w(8 * 64);  // 8 × 64 (8 × 61 seeds take its first 488)
  for (float& x : w) x = static_cast<float>(rng.Normal());
  return w;
}

// The components of `qt` as one safetensors file in memory.
std::string ComponentsFile(const glvq::QuantizedTensor& qt) {
  std::vector<glvq::TensorToWrite> parts = glvq::ComponentTensors(qt);
  for (auto& p : parts) p.name = p.name.substr(p.name.rfind('.') + 1);
  std::vector<size_t> order;
  std::string file = glvq::SerializeSafetensorsHeader(parts, {}, &order).value();
  for (size_t i : order)
    file.append(reinterpret_cast<const char*>(parts[i].data.data()), parts[i].data.size());
  return file;
}

glvq::Manifest OneTensorManifest(const glvq::QuantizedTensor& qt) {
  glvq::Manifest m;
  m.config = {qt.method, 2, qt.dim, qt.group_size};
  glvq::ManifestTensor t;
  t.name = qt.name;
  t.quantized = true;
  t.shape = {qt.rows, qt.cols};
  t.method = qt.method;
  t.group_size = qt.group_size;
  t.dim = qt.dim;
  t.num_groups = qt.NumGroups();
  for (const auto& p : glvq::ComponentTensors(qt)) {
    const std::string component = p.name.substr(p.name.rfind('.') + 1);
    t.components[component] = {p.name, p.dtype, p.shape, p.data.size(), glvq::Crc32c(p.data)};
  }
  t.accounting = glvq::ComputeAccounting(qt);
  t.quality = qt.quality;
  m.totals = t.accounting;
  m.tensors.push_back(t);
  return m;
}

// A pvq tensor the reference quantizer never writes (it needs D to divide
// the group size): D = 3, group size 8, 2 × 13, so both groups (widths 8
// and 5) have whole vectors and a short one of 2 weights.
absl::StatusOr<glvq::QuantizedTensor> ShortVectorPvq() {
  glvq::QuantizedTensor qt;
  qt.name = "w";
  qt.method = std::string(glvq::kMethodPvq);
  qt.rows = 2;
  qt.cols = 13;
  qt.group_size = 8;
  qt.dim = 3;
  // Pyramid sizes N(3, 2) = 18, N(2, 1) = 4; N(3, 3) = 38, N(2, 2) = 8.
  qt.pulses = {2, 1, 3, 2};
  qt.gains = {0.5f, 1.0f, 0.25f, 0.75f};  // 1 gain bit; rows for whole and short vectors
  qt.norms = {2.0f, 4.0f};
  glvq::PvqCodes codes;
  for (int j = 0; j < 10; ++j) {  // rows · (3 + 2) records; indices below every N
    codes.indices.push_back(static_cast<uint64_t>(3 * j % 4));
    codes.gain_codes.push_back(static_cast<uint8_t>(j % 2));
  }
  RETURN_IF_ERROR(glvq::PackPvqCodes(codes, &qt));
  return qt;
}

// Writes the packed_format seeds of pvq geometries that the 8 × 64 seeds
// miss: a ragged tensor from the quantizer (D = 4; the last group of 29
// columns ends in a short vector of 1) and ShortVectorPvq.
absl::Status WriteMorePvqSeeds(const fs::path& dir, const std::vector<float>& w, uint8_t mode) {
  auto config = glvq::fuzz::SmallConfig(glvq::quant::Method::kPvq);
  config.dim = 4;
  ASSIGN_OR_RETURN(auto quantizer, glvq::engine::MakeQuantizer(config));
  ASSIGN_OR_RETURN(auto ragged, glvq::engine::QuantizeRange(*quantizer, {"w", {w.data(), 8, 61}}));
  ASSIGN_OR_RETURN(glvq::QuantizedTensor short_vectors, ShortVectorPvq());
  // Shape bytes: 8 × 61, group 32 and D 4; then 2 × 13, group 8 and D 3.
  const char m = static_cast<char>(mode);
  Write(dir / "seed-pvq-ragged-components",
        std::string{m, 7, 60, 5} + ComponentsFile(ragged.result.tensor));
  Write(dir / "seed-pvq-short-components",
        std::string{m, 1, 12, 0} + ComponentsFile(short_vectors));
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds DIR\n";
    return 2;
  }
  const fs::path root = argv[1];
  fs::create_directories(root / "task_result");
  fs::create_directories(root / "packed_format");
  const std::vector<float> w = Weights();
  for (size_t i = 0; i < glvq::fuzz::kMethods.size(); ++i) {
    const auto config = glvq::fuzz::SmallConfig(glvq::fuzz::kMethods[i]);
    auto quantizer = glvq::engine::MakeQuantizer(config);
    auto result = glvq::engine::QuantizeRange(**quantizer, {"w", {w.data(), 8, 64}});
    if (!result.ok()) {
      std::cerr << "fuzz_seeds: " << result.status() << "\n";
      return 1;
    }
    const auto task = glvq::fuzz::SmallTask(config.method);
    const auto encoded = glvq::rpc::EncodeResult(task, *result);
    const std::string header = encoded.header.SerializeAsString();
    const std::string name = "seed-" + result->result.tensor.method;
    const auto b = static_cast<uint8_t>(i);
    Write(root / "task_result" / name, glvq::fuzz::JoinResult(b, header, encoded.payload));
    Write(root / "task_result" / (name + "-fixcrc"),
          glvq::fuzz::JoinResult(b | 0x80, header, encoded.payload));

    const glvq::QuantizedTensor& qt = result->result.tensor;
    // Mode 2i+1 picks method i; shape bytes 7, 63, 8: 8 × 64, group 32, d 8.
    const std::string shape = {static_cast<char>(2 * i + 1), 7, 63, 8};
    Write(root / "packed_format" / (name + "-components"), shape + ComponentsFile(qt));
    Write(root / "packed_format" / (name + "-manifest"),
          std::string(1, '\0') + glvq::SerializeManifest(OneTensorManifest(qt)));
    if (config.method == glvq::quant::Method::kPvq) {
      const absl::Status s =
          WriteMorePvqSeeds(root / "packed_format", w, static_cast<uint8_t>(2 * i + 1));
      if (!s.ok()) {
        std::cerr << "fuzz_seeds: " << s << "\n";
        return 1;
      }
    }
  }
  return 0;
}
