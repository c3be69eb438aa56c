// The `glvq` binary end to end: inspect on the real fixture, JSON output,
// exit codes and one-line errors on bad input, and the example model.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_split.h"
#include "common/base/file_util.h"
#include "common/packed/packed_model.h"
#include "common/safetensors/reader.h"
#include "worker/engine/quantizer.h"
#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

namespace glvq {
namespace {
namespace fs = std::filesystem;
using testing::RunCommand;
using testing::ScratchDir;

std::string Glvq() { return (testing::BinDir() / "glvq").string(); }

void SkipWithoutFixture() {
  if (!fs::exists(testing::Stories260KDir() / "model.safetensors")) {
    GTEST_SKIP() << "fixture stories260K not found";
  }
}

TEST(InspectCli, ListsEveryTensorOfTheFixture) {
  SkipWithoutFixture();
  auto r = RunCommand(Glvq() + " inspect " + testing::Stories260KDir().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("model.layers.0.mlp.down_proj.weight"), std::string::npos);
  EXPECT_NE(r.out.find("[64, 172]"), std::string::npos);
  EXPECT_NE(r.out.find("totals: 47 tensors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hidden_size=64"), std::string::npos) << "config is shown";
}

TEST(InspectCli, JsonHasTensorsAndTotals) {
  SkipWithoutFixture();
  auto r = RunCommand(Glvq() + " inspect --json " + testing::Stories260KDir().string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["tensors"].size(), 47u);
  uint64_t bytes = 0;
  for (const auto& t : j["tensors"]) {
    ASSERT_TRUE(t.contains("name") && t.contains("dtype") && t.contains("shape") &&
                t.contains("bytes"));
    bytes += t["bytes"].get<uint64_t>();
    if (t["name"] == "model.layers.0.self_attn.k_proj.weight") {
      EXPECT_EQ(t["shape"], nlohmann::json({32, 64}));
      EXPECT_EQ(t["dtype"], "F32");
    }
  }
  EXPECT_EQ(j["totals"]["tensors"], 47);
  EXPECT_EQ(j["totals"]["bytes"], bytes);
  EXPECT_EQ(j["config"]["hidden_size"], 64);
}

TEST(InspectCli, BadInputIsOneLineAndExitCodeOne) {
  ScratchDir dir;
  testing::WriteFile(dir / "bad.safetensors", std::string("\x10\x00\x00\x00\x00\x00\x00\x00{not json}}}}}}}", 24));
  for (const std::string& path : {(dir / "bad.safetensors").string(),
                                  (dir / "missing.safetensors").string()}) {
    auto r = RunCommand(Glvq() + " inspect " + path);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_NE(lines[0].find(path), std::string::npos) << "names the file: " << lines[0];
  }
}

TEST(InspectCli, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCommand(Glvq()).exit_code, 2);
  EXPECT_EQ(RunCommand(Glvq() + " inspect").exit_code, 2);
  EXPECT_EQ(RunCommand(Glvq() + " inspect --no-such-flag x").exit_code, 2);
  EXPECT_EQ(RunCommand(Glvq() + " frobnicate").exit_code, 2);
  EXPECT_EQ(RunCommand(Glvq() + " --help").exit_code, 0);
}

TEST(ExampleModel, IsDeterministicLlamaShapedAndInspectable) {
  ScratchDir dir;
  const std::string a = (dir / "a").string(), b = (dir / "b").string();
  ASSERT_EQ(RunCommand(Glvq() + " example-model --out " + a).exit_code, 0);
  ASSERT_EQ(RunCommand(Glvq() + " example-model --out " + b).exit_code, 0);
  for (const char* f : {"model.safetensors", "config.json"}) {
    EXPECT_EQ(*ReadFileToString(fs::path(a) / f, 1u << 30), *ReadFileToString(fs::path(b) / f, 1u << 30)) << f;
  }
  auto r = RunCommand(Glvq() + " inspect --json " + a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["totals"]["tensors"], 1 + 4 * 9 + 1);
  EXPECT_EQ(j["config"]["model_type"], "llama");
  EXPECT_LT(j["totals"]["bytes"].get<uint64_t>(), 16u << 20) << "a few MB";
  auto again = RunCommand(Glvq() + " example-model --out " + a);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
}

// Quantizes every 2-D projection of the fixture with GLVQ (2 bits, d = 8)
// and writes the packed model to `out`.
void WritePackedFixture(const fs::path& out) {
  auto source = SafetensorsModel::Open(testing::Stories260KDir());
  ASSERT_TRUE(source.ok()) << source.status();
  quant::QuantizerConfig config;
  config.glvq.max_iters = 3;
  config.glvq.refine_steps = 2;
  auto quantizer = engine::MakeQuantizer(config);
  ASSERT_TRUE(quantizer.ok());
  std::vector<QuantizedTensor> quantized;
  for (const std::string& name : source->tensor_names()) {
    if (name.find("_proj.weight") == std::string::npos) continue;
    const TensorView view = *source->Get(name);
    std::vector<float> w(static_cast<size_t>(view.NumElements()));
    ASSERT_TRUE(ConvertToF32(view.dtype, view.data, w).ok());
    auto r = (*quantizer)->Quantize(name, {w.data(), view.shape[0], view.shape[1]}, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    quantized.push_back(std::move(r->tensor));
  }
  ASSERT_EQ(quantized.size(), 35u);
  ASSERT_TRUE(WritePackedModel(out, *source, quantized, {"glvq", 2.0, 8, 128, {}}).ok());
}

TEST(InspectCli, PackedModelShowsQuantizedTensorsAndRejectsCorruption) {
  SkipWithoutFixture();
  ScratchDir dir;
  const fs::path packed = dir / "packed";
  WritePackedFixture(packed);
  auto r = RunCommand(Glvq() + " inspect --json " + packed.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "glvq-packed");
  EXPECT_EQ(j["tensors"].size(), 47u) << "logical tensors, not components";
  EXPECT_EQ(j["totals"]["quantized_tensors"], 35);
  EXPECT_EQ(j["config"]["quantization_config"]["quant_method"], "glvq");
  for (const auto& t : j["tensors"]) {
    if (t["name"] != "model.layers.0.mlp.down_proj.weight") continue;
    EXPECT_TRUE(t["quantized"].get<bool>());
    EXPECT_GT(t["bits_per_weight"].get<double>(), 2.0);
    EXPECT_LT(t["bits_per_weight"].get<double>(), 3.0);
  }
  // Flip one byte inside the data section: the checksum must catch it.
  const fs::path st = packed / "model.safetensors";
  std::string bytes = *ReadFileToString(st, 1u << 30);
  bytes[bytes.size() - 100] ^= 0x5A;
  testing::WriteFile(st, bytes);
  auto bad = RunCommand(Glvq() + " inspect " + packed.string());
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("CRC32C mismatch"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace glvq
