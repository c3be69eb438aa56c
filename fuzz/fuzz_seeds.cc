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
#include "common/packed/packed_model.h"
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
  std::vector<float> w(8 * 64);
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
  }
  return 0;
}
