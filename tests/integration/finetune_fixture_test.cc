// Fine-tuning a packed model of the real stories260K checkpoint: the
// tunable form decodes to the packed weights, tuning on half the fixture's
// sequences lowers the KL on the other half, and the written model keeps
// every code and bit while its gains and norms move; a different original
// model is refused.
#include <gtest/gtest.h>

#include <fstream>

#include "common/packed/packed_model.h"
#include "model/eval.h"
#include "model/finetune.h"
#include "model/llama.h"
#include "model/quantize_model.h"
#include "model/tokens.h"
#include "tests/support/fast_quantize.h"
#include "tests/support/test_support.h"

namespace glvq::model {
namespace {
namespace fs = std::filesystem;

class FinetuneStories : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(testing::Stories260KDir() / "model.safetensors")) {
      GTEST_SKIP() << "fixture stories260K not found";
    }
    original_.emplace(*LlamaModel::LoadSafetensors(testing::Stories260KDir()));
    tokens_ = *ReadTokenFile(testing::Stories260KDir() / "eval_tokens_seed1234.txt",
                             original_->config().vocab_size);
    quant::QuantizerConfig c = testing::FastTestConfig();
    c.method = quant::Method::kTrellis;
    c.bits = 2;
    c.group_size = 16;
    c.trellis.window = 8;
    c.threads = 2;
    ASSERT_TRUE(QuantizeModel(testing::Stories260KDir(), dir_ / "packed", c).ok());
  }
  std::optional<LlamaModel> original_;
  std::vector<TokenSequence> tokens_;
  testing::ScratchDir dir_;
};

TEST_F(FinetuneStories, TunedGainsAndNormsLowerTheHeldOutKlAtTheSameBits) {
  const PackedModel packed = *PackedModel::Open(dir_ / "packed");
  auto tunable = LoadTunable(packed);
  ASSERT_TRUE(tunable.ok()) << tunable.status();
  const LlamaModel loaded = *LlamaModel::LoadPacked(dir_ / "packed");
  const RowMatrix dense = tunable->layers[1].linears[kDown].Dense();
  const RowMatrix& decoded = loaded.weights().layers[1].down_proj;
  EXPECT_LT((dense - decoded).cwiseAbs().maxCoeff(), 1e-5 * decoded.cwiseAbs().maxCoeff())
      << "the tunable form decodes to the packed weights";

  const std::span<const TokenSequence> all(tokens_);
  FinetuneOptions o;
  o.steps = 40;
  o.seq_len = 128;
  o.learning_rate = 5e-3;
  o.threads = 2;
  auto report = Finetune(*original_, *tunable, all.first(8), o);
  ASSERT_TRUE(report.ok()) << report.status();
  const SafetensorsModel source = *SafetensorsModel::Open(testing::Stories260KDir());
  ASSERT_TRUE(
      WriteFinetuned(packed, *tunable, {source, *original_}, o, *report, dir_ / "tuned").ok());

  const PackedModel tuned = *PackedModel::Open(dir_ / "tuned");
  EXPECT_EQ(tuned.totals(), packed.totals()) << "the same bits";
  const auto before = Evaluate(loaded, all.last(8), &*original_);
  const auto after = Evaluate(*LlamaModel::LoadPacked(dir_ / "tuned"), all.last(8), &*original_);
  ASSERT_TRUE(before.ok() && after.ok());
  std::printf("held-out KL: %.4f before fine-tuning, %.4f after (%lld parameters)\n", *before->kl,
              *after->kl, static_cast<long long>(report->parameters));
  EXPECT_LT(*after->kl, 0.9 * *before->kl);

  const std::string down = "model.layers.1.mlp.down_proj.weight";
  const QuantizedTensor a = *packed.LoadQuantized(down), b = *tuned.LoadQuantized(down);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_NE(a.row_scale, b.row_scale);
  EXPECT_NE(a.scale, b.scale);
  ASSERT_TRUE(a.quality.has_value() && b.quality.has_value()) << "measured again";
  EXPECT_NE(a.quality->nmse, b.quality->nmse);
  EXPECT_GT(b.quality->nmse, 0);
  EXPECT_EQ(b.quality->proxy_loss, b.quality->nmse) << "no Hessians given: H = I";
  EXPECT_NE(*packed.Dequantize("model.norm.weight"), *tuned.Dequantize("model.norm.weight"));
  EXPECT_EQ(*packed.Dequantize("model.embed_tokens.weight"),
            *tuned.Dequantize("model.embed_tokens.weight"));
  EXPECT_EQ(std::get<int64_t>(tuned.manifest().config.parameters.at("finetune_steps")), 40);
}

TEST_F(FinetuneStories, RefusesAnotherOriginalAndAnExistingOutput) {
  const PackedModel packed = *PackedModel::Open(dir_ / "packed");
  const TunableLlama tunable = *LoadTunable(packed);
  const FinetuneOptions o;
  const FinetuneReport r;
  const SafetensorsModel source = *SafetensorsModel::Open(testing::Stories260KDir());
  ASSERT_TRUE(WriteFinetuned(packed, tunable, {source, *original_}, o, r, dir_ / "ok").ok());
  EXPECT_EQ(WriteFinetuned(packed, tunable, {source, *original_}, o, r, dir_ / "ok").code(),
            absl::StatusCode::kFailedPrecondition)
      << "the output exists";

  // Another original: the stories260K files with one byte of the embedding changed.
  const fs::path other = dir_ / "other";
  fs::create_directories(other);
  for (const auto& e : fs::directory_iterator(testing::Stories260KDir())) {
    fs::copy(e.path(), other / e.path().filename());
  }
  const uint64_t at = source.Find("model.embed_tokens.weight")->begin + 100;
  {
    std::fstream f(other / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    uint64_t header = 0;
    f.read(reinterpret_cast<char*>(&header), 8);
    f.seekg(static_cast<std::streamoff>(8 + header + at));
    char byte = 0;
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x40);
    f.seekp(static_cast<std::streamoff>(8 + header + at));
    f.write(&byte, 1);
  }
  const SafetensorsModel changed = *SafetensorsModel::Open(other);
  const absl::Status s = WriteFinetuned(packed, tunable, {changed, *original_}, o, r, dir_ / "bad");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("model.embed_tokens.weight"), std::string::npos) << s;
  EXPECT_FALSE(fs::exists(dir_ / "bad"));
}

}  // namespace
}  // namespace glvq::model
