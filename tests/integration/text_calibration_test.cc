// Text in and out as a user runs it: `glvq tokenize` + `glvq calibrate`; a
// job whose spec.calibration.text makes `glvq quantize` compute the
// Hessians itself, reuse them, and refuse stale ones; `glvq generate` on
// the original and the packed model. On the stories260K fixture with a
// small byte-level tokenizer.json written here.
#include <gtest/gtest.h>

#include <string>

#include "common/base/file_util.h"
#include "common/safetensors/reader.h"
#include "common/text/pre_tokenizer.h"
#include "model/calibration.h"
#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

namespace glvq {
namespace {
namespace fs = std::filesystem;
using testing::RunCommand;
using testing::ScratchDir;

std::string Glvq() { return (testing::BinDir() / "glvq").string(); }

// Every byte (ids 0–255) and a few merges: ids stay below the fixture's 512.
std::string TinyTokenizerJson() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[text::ByteLevelChar(static_cast<unsigned char>(b))] = b;
  nlohmann::json merges = nlohmann::json::array();
  int id = 256;
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"t", "h"}, {"th", "e"}, {"\xC4\xA0", "the"}, {"a", "n"}, {"\xC4\xA0", "a"}}) {
    vocab[a + b] = id++;
    merges.push_back(a + " " + b);
  }
  return nlohmann::json{
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}
      .dump();
}

std::string Story(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += "Once upon a time there was a little cat named Tom " + std::to_string(i) +
         ". The cat liked the sun and an apple.\n";
  }
  return s;
}

class TextCalibration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(testing::Stories260KDir() / "model.safetensors")) {
      GTEST_SKIP() << "fixture stories260K not found";
    }
    testing::WriteFile(dir_ / "tokenizer.json", TinyTokenizerJson());
    testing::WriteFile(dir_ / "story.txt", Story(40));
    testing::WriteFile(dir_ / "rows.jsonl",
                       "{\"text\": \"" + Story(1).substr(0, 60) + "\"}\n{\"text\": \"the end\"}\n");
  }
  // A job calibrating on the two files, quantizing with RTN 4 bits.
  std::string WriteJob(const std::string& text_keys) {
    const std::string yaml =
        "apiVersion: glvq.io/v1\nkind: QuantizationJob\nmetadata: {name: text-calib}\nspec:\n"
        "  model: {path: " +
        testing::Stories260KDir().string() +
        "}\n"
        "  calibration:\n    hessians: h\n    text:\n" +
        text_keys + "  quantizer: {method: rtn, bits: 4}\n  output: {path: out}\n";
    testing::WriteFile(dir_ / "job.yaml", yaml);
    return (dir_ / "job.yaml").string();
  }
  std::string Keys() const {
    return "      files: [story.txt]\n      jsonl: [rows.jsonl]\n      tokenizer: tokenizer.json\n"
           "      samples: 6\n      seqLen: 64\n      seed: 3\n";
  }
  ScratchDir dir_;
};

TEST_F(TextCalibration, JobCalibratesLikeTokenizeThenCalibrateAndReusesIt) {
  const std::string job = WriteJob(Keys());
  const auto first = RunCommand(Glvq() + " quantize --config " + job + " --workers 1 --threads 1");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.err.find("6 windows of 64 tokens"), std::string::npos) << first.err;
  ASSERT_TRUE(fs::exists(dir_ / "out"));

  // The same windows through the two commands give the same Hessians.
  const auto tok = RunCommand(
      Glvq() + " tokenize --tokenizer " + (dir_ / "tokenizer.json").string() + " --text " +
      (dir_ / "story.txt").string() + " --jsonl " + (dir_ / "rows.jsonl").string() +
      " --samples 6 --seq-len 64 --seed 3 --out " + (dir_ / "calib.tokens").string());
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  const auto cal = RunCommand(Glvq() + " calibrate --model " + testing::Stories260KDir().string() +
                              " --tokens " + (dir_ / "calib.tokens").string() + " --out " +
                              (dir_ / "h2").string());
  ASSERT_EQ(cal.exit_code, 0) << cal.err;
  const auto a = SafetensorsModel::Open(dir_ / "h"), b = SafetensorsModel::Open(dir_ / "h2");
  ASSERT_TRUE(a.ok() && b.ok());
  for (const char* w :
       {"model.layers.0.self_attn.q_proj.weight", "model.layers.4.mlp.down_proj.weight"}) {
    const auto ha = model::LoadHessianFor(*a, w), hb = model::LoadHessianFor(*b, w);
    ASSERT_TRUE(ha.ok() && hb.ok() && ha->has_value() && hb->has_value());
    EXPECT_EQ((*ha)->data, (*hb)->data) << w;
  }
  EXPECT_NE(a->metadata().at("glvq.calibration_text").find("\"samples\":6"), std::string::npos);

  fs::remove_all(dir_ / "out");
  const auto again = RunCommand(Glvq() + " quantize --config " + job + " --workers 1");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("reusing"), std::string::npos) << again.err;

  // Other text: the Hessians on disk are stale, and nothing is quantized.
  fs::remove_all(dir_ / "out");
  testing::WriteFile(dir_ / "story.txt", Story(41));
  const auto stale = RunCommand(Glvq() + " quantize --config " + job + " --workers 1");
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_NE(stale.err.find("holds Hessians of other calibration text"), std::string::npos)
      << stale.err;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(TextCalibration, BadSpecsAreRefusedBeforeAnyWork) {
  auto run = [&](const std::string& keys) {
    return RunCommand(Glvq() + " quantize --config " + WriteJob(keys) + " --workers 1");
  };
  auto none = run("      seed: 1\n");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("job.yaml:"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("name at least one of 'files' or 'jsonl'"), std::string::npos);
  auto len = run("      files: [story.txt]\n      seqLen: 0\n");
  EXPECT_NE(len.err.find("spec.calibration.text.seqLen: 0 is not in [1,"), std::string::npos)
      << len.err;
  auto few =
      run("      files: [story.txt]\n      tokenizer: tokenizer.json\n      samples: 100000\n");
  EXPECT_EQ(few.exit_code, 1);
  EXPECT_NE(few.err.find("fewer than the 100000 asked for"), std::string::npos) << few.err;
  EXPECT_FALSE(fs::exists(dir_ / "h"));
  // The fixture has no tokenizer.json of its own.
  auto notok = run("      files: [story.txt]\n");
  EXPECT_EQ(notok.exit_code, 1);
  EXPECT_NE(notok.err.find("no tokenizer.json"), std::string::npos) << notok.err;
  // A coordinator does not calibrate: plan says what to do instead.
  const auto plan = RunCommand(Glvq() + " plan " + WriteJob(Keys()));
  EXPECT_NE(plan.exit_code, 0);
  EXPECT_NE(plan.err.find("runs in `glvq quantize`"), std::string::npos) << plan.err;
}

TEST_F(TextCalibration, GenerateContinuesAPromptOnOriginalAndPackedModels) {
  const std::string model = testing::Stories260KDir().string();
  const std::string tok = " --tokenizer " + (dir_ / "tokenizer.json").string();
  auto run = [&](const std::string& args) { return RunCommand(Glvq() + " generate " + args); };
  const auto r =
      run("--model " + model + tok + " --prompt 'Once upon' --max-tokens 8 --no-stop --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key :
       {"text", "prompt_tokens", "new_tokens", "tokens", "seconds", "tokens_per_second"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["new_tokens"], 8);
  EXPECT_EQ(j["prompt_tokens"], 9);  // "Once upon": 9 bytes, no merge applies
  // The text is the decode of the tokens, as glvq tokenize --decode gives it.
  std::string ids;
  for (const auto& id : j["tokens"]) ids += std::to_string(id.get<int>()) + " ";
  testing::WriteFile(dir_ / "gen.tokens", ids + "\n");
  const auto dec =
      RunCommand(Glvq() + " tokenize" + tok + " --decode " + (dir_ / "gen.tokens").string() +
                 " --out " + (dir_ / "gen.jsonl").string());
  ASSERT_EQ(dec.exit_code, 0) << dec.err;
  const std::string line = *ReadFileToString(dir_ / "gen.jsonl");
  EXPECT_EQ(nlohmann::json::parse(line)["text"], j["text"]);
  // Greedy: the same again. Text mode streams it to stdout.
  EXPECT_EQ(nlohmann::json::parse(run("--model " + model + tok +
                                      " --prompt 'Once upon' --max-tokens 8 --no-stop --json")
                                      .out)["tokens"],
            j["tokens"]);
  const auto text =
      run("--model " + model + tok + " --prompt 'Once upon' --max-tokens 8 --no-stop");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.err.find("8 new tokens"), std::string::npos) << text.err;

  // A packed model (RTN 4 bits) generates too.
  const auto q = RunCommand(Glvq() + " quantize --model " + model + " --out " +
                            (dir_ / "packed").string() + " --method rtn --bits 4 --workers 1");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const auto p = run("--packed " + (dir_ / "packed").string() + tok +
                     " --prompt 'Once upon' --max-tokens 4 --json");
  EXPECT_EQ(p.exit_code, 0) << p.err;
  EXPECT_LE(nlohmann::json::parse(p.out)["new_tokens"].get<int>(), 4);

  EXPECT_EQ(run("--prompt x" + tok).exit_code, 1);  // neither --model nor --packed
  const auto both = run("--model " + model + " --packed " + model + tok + " --prompt x");
  EXPECT_NE(both.err.find("give one of --model"), std::string::npos) << both.err;
}

}  // namespace
}  // namespace glvq
