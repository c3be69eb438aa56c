// `glvq eval`, `glvq calibrate` and `glvq dequantize` as a user runs them:
// JSON keys, exit codes, one-line errors naming file and line.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/str_split.h"
#include "common/safetensors/reader.h"
#include "model/calibration.h"
#include "nlohmann/json.hpp"
#include "model/quantize_model.h"
#include "tests/support/fast_quantize.h"
#include "tests/support/test_support.h"

namespace glvq {
namespace {
namespace fs = std::filesystem;
using testing::RunCommand;
using testing::ScratchDir;

std::string Glvq() { return (testing::BinDir() / "glvq").string(); }
std::string Model() { return testing::Stories260KDir().string(); }
std::string Tokens() { return (testing::Stories260KDir() / "eval_tokens_seed1234.txt").string(); }

class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(testing::Stories260KDir() / "model.safetensors")) {
      GTEST_SKIP() << "fixture stories260K not found";
    }
  }
};

nlohmann::json RunJson(const std::string& args) {
  const auto r = RunCommand(Glvq() + " " + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST_F(EvalCli, JsonHasNllAndPpl) {
  const auto j = RunJson("eval --model " + Model() + " --tokens " + Tokens() + " --json");
  EXPECT_NEAR(j["nll"].get<double>(), 2.828333, 2e-4);
  EXPECT_NEAR(j["ppl"].get<double>(), std::exp(j["nll"].get<double>()), 1e-9);
  EXPECT_EQ(j["predictions"], 4080);
  EXPECT_FALSE(j.contains("kl"));
  const auto text = RunCommand(Glvq() + " eval --model " + Model() + " --tokens " + Tokens());
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("2.8283"), std::string::npos) << text.out;
}

TEST_F(EvalCli, PackedReportsKlTop1AndBothNlls_DequantizedAgrees) {
  ScratchDir dir;
  const std::string packed = (dir / "packed").string(), plain = (dir / "plain").string();
  ASSERT_TRUE(model::QuantizeModel(Model(), packed, testing::FastTestConfig()).ok());
  const auto j = RunJson("eval --model " + Model() + " --packed " + packed + " --tokens " +
                         Tokens() + " --json");
  for (const char* key : {"nll", "ppl", "kl", "top1", "nll_original"}) {
    ASSERT_TRUE(j.contains(key)) << key;
  }
  EXPECT_NEAR(j["nll_original"].get<double>(), 2.828333, 2e-4);
  EXPECT_GT(j["kl"].get<double>(), 0.0);
  EXPECT_GT(j["top1"].get<double>(), 0.5);
  EXPECT_LT(j["top1"].get<double>(), 1.0);

  // The dequantized F32 model holds the very weights eval decoded.
  const auto d = RunCommand(Glvq() + " dequantize --packed " + packed + " --out " + plain);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const auto j2 = RunJson("eval --model " + plain + " --tokens " + Tokens() + " --json");
  EXPECT_EQ(j2["nll"].get<double>(), j["nll"].get<double>());
  const auto self = RunJson("eval --model " + plain + " --packed " + packed + " --tokens " +
                            Tokens() + " --json");
  EXPECT_EQ(self["kl"].get<double>(), 0.0);
  EXPECT_EQ(self["top1"].get<double>(), 1.0);

  const std::string bf16 = (dir / "bf16").string();
  ASSERT_EQ(
      RunCommand(Glvq() + " dequantize --packed " + packed + " --out " + bf16 + " --dtype BF16")
          .exit_code,
      0);
  const auto st = SafetensorsModel::Open(bf16);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->Find("model.layers.0.mlp.up_proj.weight")->dtype, DType::kBF16);
  EXPECT_EQ(st->Find("model.norm.weight")->dtype, DType::kF32) << "pass-through kept";
  const auto again = RunCommand(Glvq() + " dequantize --packed " + packed + " --out " + bf16);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
}

void ExpectOneLineError(const std::string& args, const std::string& expect) {
  const auto r = RunCommand(Glvq() + " " + args);
  EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.out;
  EXPECT_TRUE(r.out.empty()) << r.out;
  std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(expect), std::string::npos) << lines[0];
}

TEST_F(EvalCli, BadTokenFilesAreRejectedNamingFileAndLine) {
  ScratchDir dir;
  const struct {
    const char* name;
    const char* text;
    const char* expect;
  } cases[] = {
      {"big.txt", "# ids\n1 2 3\n1 512 4\n",
       "big.txt:3: token id \"512\" is outside the vocabulary"},
      {"blank.txt", "\n\n   \n", "blank.txt: no token sequences"},
      {"words.txt", "1 2\n1 two 3\n", "words.txt:2: \"two\" is not a token id"},
  };
  for (const auto& c : cases) {
    testing::WriteFile(dir / c.name, c.text);
    const std::string file = (dir / c.name).string();
    ExpectOneLineError("eval --model " + Model() + " --tokens " + file, c.expect);
    ExpectOneLineError(
        "calibrate --model " + Model() + " --tokens " + file + " --out " + (dir / "h").string(),
        c.expect);
  }
  EXPECT_FALSE(fs::exists(dir / "h")) << "nothing written on bad input";
  ExpectOneLineError("eval --model " + Model() + " --tokens " + (dir / "nope.txt").string(),
                     "nope.txt");
  ExpectOneLineError("eval --model " + (dir / "nomodel").string() + " --tokens " + Tokens(),
                     "nomodel");
}

// `glvq finetune` keeps its JSON keys, writes a model `glvq eval` reads,
// and refuses an original the packed model was not made from.
TEST_F(EvalCli, FinetuneWritesATunedModelAndRefusesAnotherOriginal) {
  ScratchDir dir;
  const std::string packed = (dir / "packed").string(), tuned = (dir / "tuned").string();
  quant::QuantizerConfig c = testing::FastTestConfig();
  c.bits = 3;
  ASSERT_TRUE(model::QuantizeModel(Model(), packed, c).ok());
  const std::string args = "finetune --model " + Model() + " --packed " + packed + " --tokens " +
                           Tokens() + " --steps 6 --seq-len 64 --threads 2 --json --out ";
  const auto j = RunJson(args + tuned);
  for (const char* key : {"out", "steps", "parameters", "windows", "kl_first", "kl_last", "kl",
                          "seconds"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["kl"].size(), 6u);
  EXPECT_EQ(j["windows"], 64) << "16 sequences of 256 tokens, 4 windows each";
  const auto e = RunJson("eval --model " + Model() + " --packed " + tuned + " --tokens " +
                         Tokens() + " --json");
  EXPECT_GT(e["kl"].get<double>(), 0);

  const auto again = RunCommand(Glvq() + " " + args + tuned);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  const auto wrong = RunCommand(Glvq() + " finetune --model " + packed + " --packed " + packed +
                                " --tokens " + Tokens() + " --steps 1 --out " +
                                (dir / "x").string());
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(std::count(wrong.err.begin(), wrong.err.end(), '\n'), 1) << wrong.err;
  EXPECT_FALSE(fs::exists(dir / "x"));
}

// spec.finetune in a job run by `glvq quantize`: the output is the tuned
// model, and it records how it was tuned.
TEST_F(EvalCli, QuantizeWithSpecFinetuneWritesTheTunedModel) {
  ScratchDir dir;
  const fs::path job = dir / "job.yaml";
  std::ofstream(job) << "apiVersion: glvq.io/v1\nkind: QuantizationJob\nmetadata: {name: ft}\n"
                        "spec:\n  model: {path: " << Model() << "}\n"
                     << "  quantizer: {method: rtn, bits: 4, groupSize: 32}\n"
                     << "  finetune: {tokens: " << Tokens() << ", steps: 3, seqLen: 64}\n"
                     << "  output: {path: out}\n";
  const auto r = RunCommand(Glvq() + " quantize --config " + job.string() + " --workers 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("fine-tuning: step 3/3"), std::string::npos) << r.err;
  const auto config = nlohmann::json::parse(std::ifstream(dir / "out" / "config.json"));
  EXPECT_EQ(config["quantization_config"]["finetune_steps"], 3);
  EXPECT_NE(r.out.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos)
      << "the quality report lists the tuned tensors";
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().find("out."), std::string::npos)
        << "no temporary directory left: " << e.path();
  }
}

TEST_F(EvalCli, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCommand(Glvq() + " eval --model " + Model()).exit_code, 2);
  EXPECT_EQ(RunCommand(Glvq() + " calibrate --model " + Model() + " --tokens x").exit_code, 2);
  EXPECT_EQ(RunCommand(Glvq() + " dequantize --packed x --out y --dtype F64").exit_code, 2);
  EXPECT_EQ(RunCommand(Glvq() + " eval --help").exit_code, 0);
}

TEST_F(EvalCli, CalibrateIsOutputAwareByDefault) {
  ScratchDir dir;
  const auto r = RunCommand(Glvq() + " calibrate --model " + Model() + " --tokens " + Tokens() +
                            " --out " + (dir / "h").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("35 Hessians"), std::string::npos) << r.out;  // 5 layers x (4 + 3)
  const auto st = SafetensorsModel::Open(dir / "h");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->metadata().at("model.layers.2.mlp.up_proj.weight"),
            "model.layers.2.mlp.up_proj.hessian");
  EXPECT_EQ(st->metadata().at("glvq.output_aware"), "self_attn.v_proj,mlp.gate_proj,mlp.up_proj");
}

TEST_F(EvalCli, CalibrateWritesOneF64HessianPerInput) {
  ScratchDir dir;
  const std::string out = (dir / "hessians").string();
  const auto r = RunCommand(Glvq() + " calibrate --model " + Model() + " --tokens " + Tokens() +
                            " --out " + out + " --plain");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("20 Hessians"), std::string::npos) << r.out;
  const auto st = SafetensorsModel::Open(out);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->tensor_names().size(), 20u);
  EXPECT_EQ(st->metadata().at("glvq.tokens"), "4096");
  EXPECT_EQ(st->metadata().at("glvq.tokens_file"), "eval_tokens_seed1234.txt");
  EXPECT_EQ(st->metadata().at("model.layers.4.self_attn.v_proj.weight"),
            "model.layers.4.self_attn.input.hessian");
  const auto h = model::LoadHessianFor(*st, "model.layers.1.mlp.down_proj.weight");
  ASSERT_TRUE(h.ok() && h->has_value());
  EXPECT_EQ((*h)->n, 172);
  EXPECT_EQ(st->Find((*h)->tensor)->dtype, DType::kF64);
  const auto again = RunCommand(Glvq() + " calibrate --model " + Model() + " --tokens " + Tokens() +
                                " --out " + out);
  EXPECT_EQ(again.exit_code, 1);
}

}  // namespace
}  // namespace glvq
