// The incremental decoder against the batched forward pass, and sampling
// from a model: deterministic, valid ids, the token-file round trip, and
// draws that follow the model's own distribution.
#include "model/sampling.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/eval.h"
#include "model/llama_decoder.h"
#include "model/tokens.h"
#include "tests/unit/llama_reference.h"

namespace glvq::model {
namespace {

using ::testing::HasSubstr;

LlamaModel Tiny(bool tied, uint64_t seed = 1) {
  const LlamaConfig c = testing::TinyConfig(tied);
  return *LlamaModel::FromWeights(c, testing::RandomWeights(c, seed));
}

TEST(LlamaDecoder, EveryStepMatchesTheForwardPassOnThePrefix) {
  const std::vector<TokenSequence> seqs = {{1, 5, 9, 33, 2, 2, 17, 36, 0, 12},
                                           {0, 36, 4, 4, 4, 12, 30, 8, 19, 3}};
  for (bool tied : {true, false}) {
    const LlamaModel m = Tiny(tied);
    LlamaDecoder decoder(m, 2, 10);
    for (size_t t = 0; t < 10; ++t) {
      const std::vector<int32_t> step = {seqs[0][t], seqs[1][t]};
      auto logits = decoder.Step(step);
      ASSERT_TRUE(logits.ok()) << logits.status();
      ASSERT_EQ(logits->rows(), 2);
      for (Eigen::Index s = 0; s < 2; ++s) {
        const TokenSequence prefix(seqs[s].begin(), seqs[s].begin() + t + 1);
        const RowMatrix full = *m.Forward(std::vector<TokenSequence>{prefix});
        EXPECT_LT((logits->row(s) - full.bottomRows(1)).cwiseAbs().maxCoeff(), 1e-5)
            << "tied " << tied << " sequence " << s << " step " << t;
      }
    }
    EXPECT_EQ(decoder.length(), 10);
  }
}

// Every family switch at once (biases, Qwen3's q/k norms, a sliding window
// shorter than the sequences, yarn RoPE): the decoder still equals the
// forward pass step by step.
TEST(LlamaDecoder, MatchesTheForwardPassWithEveryFamilySwitch) {
  LlamaConfig c = testing::TinyConfig(false);
  c.qkv_bias = c.o_bias = c.mlp_bias = c.qk_norm = true;
  c.sliding_window = 4;
  c.rope_scaling = {.type = RopeType::kYarn, .factor = 4, .original_max_position_embeddings = 4,
                    .attention_factor = 1.1};
  LlamaWeights w = testing::RandomWeights(c, 3);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  const auto random = [&](int64_t n, float mean) {
    Eigen::VectorXf v(n);
    for (Eigen::Index i = 0; i < n; ++i) v(i) = mean + normal(rng);
    return v;
  };
  for (LlamaLayerWeights& l : w.layers) {
    l.q_bias = random(c.q_dim(), 0), l.k_bias = random(c.kv_dim(), 0);
    l.v_bias = random(c.kv_dim(), 0), l.o_bias = random(c.hidden_size, 0);
    l.gate_bias = random(c.intermediate_size, 0), l.up_bias = random(c.intermediate_size, 0);
    l.down_bias = random(c.hidden_size, 0);
    l.q_norm = random(c.head_dim, 1), l.k_norm = random(c.head_dim, 1);
  }
  auto m = LlamaModel::FromWeights(c, std::move(w));
  ASSERT_TRUE(m.ok()) << m.status();
  const TokenSequence seq = {1, 5, 9, 33, 2, 2, 17, 36, 0, 12};
  LlamaDecoder decoder(*m, 1, 10);
  for (size_t t = 0; t < seq.size(); ++t) {
    auto logits = decoder.Step(std::vector<int32_t>{seq[t]});
    ASSERT_TRUE(logits.ok()) << logits.status();
    const TokenSequence prefix(seq.begin(), seq.begin() + t + 1);
    const RowMatrix full = *m->Forward(std::vector<TokenSequence>{prefix});
    EXPECT_LT((logits->row(0) - full.bottomRows(1)).cwiseAbs().maxCoeff(), 1e-5) << "step " << t;
  }
}

TEST(LlamaDecoder, RejectsWrongCountsBadIdsAndOverlongSequences) {
  const LlamaModel m = Tiny(true);
  LlamaDecoder decoder(m, 2, 1);
  const std::vector<int32_t> one = {1}, bad = {1, 37}, ok = {1, 2};
  EXPECT_THAT(std::string(decoder.Step(one).status().message()), HasSubstr("1 tokens for 2"));
  EXPECT_THAT(std::string(decoder.Step(bad).status().message()), HasSubstr("token id 37"));
  EXPECT_TRUE(decoder.Step(ok).ok());
  EXPECT_THAT(std::string(decoder.Step(ok).status().message()), HasSubstr("already have 1"));
}

TEST(Sample, SameSeedSameSequencesOtherSeedOthers) {
  const LlamaModel m = Tiny(false);
  const SampleOptions o{.sequences = 11, .length = 20, .seed = 7};
  auto a = SampleSequences(m, o);
  auto b = SampleSequences(m, o);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  SampleOptions other = o;
  other.seed = 8;
  EXPECT_NE(*SampleSequences(m, other), *a);
  ASSERT_EQ(a->size(), 11u);  // more than one decoder batch
  for (const TokenSequence& seq : *a) {
    ASSERT_EQ(seq.size(), 20u);
    EXPECT_EQ(seq[0], 1) << "starts with BOS";
    for (int32_t id : seq) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, m.config().vocab_size);
    }
  }
  EXPECT_NE((*a)[0], (*a)[1]) << "each sequence has its own stream";
}

TEST(Sample, StartsWithTheConfiguredBos) {
  LlamaConfig c = testing::TinyConfig(true);
  c.bos_token_id = 30;
  const LlamaModel m = *LlamaModel::FromWeights(c, testing::RandomWeights(c, 2));
  auto s = SampleSequences(m, {.sequences = 2, .length = 3, .seed = 1});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0][0], 30);
  EXPECT_EQ((*s)[1][0], 30);
}

TEST(Sample, TokenFileRoundTripsThroughTheParser) {
  const LlamaModel m = Tiny(true);
  const std::vector<TokenSequence> seqs = *SampleSequences(m, {.sequences = 3, .length = 9});
  const std::string text = FormatTokens(seqs, {"sampled", "second comment"});
  EXPECT_EQ(text.substr(0, 10), "# sampled\n");
  auto parsed = ParseTokens(text, "sampled.txt", m.config().vocab_size);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, seqs);
}

TEST(Sample, ModelAgainstItselfOnItsSamplesHasZeroKlAndFullAgreement) {
  const LlamaModel m = Tiny(false, 3);
  const std::vector<TokenSequence> seqs = *SampleSequences(m, {.sequences = 4, .length = 16});
  auto r = Evaluate(m, seqs, &m);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->predictions, 4 * 15);
  EXPECT_EQ(*r->kl, 0.0);
  EXPECT_EQ(*r->top1, 1.0);
}

// Mean over the sampled positions of the entropy of the model's next-token
// distribution there, in nats.
double MeanEntropy(const LlamaModel& m, const std::vector<TokenSequence>& seqs) {
  const RowMatrix logits = *m.Forward(seqs);
  double sum = 0;
  int64_t n = 0;
  Eigen::Index row = 0;
  for (const TokenSequence& seq : seqs) {
    for (size_t t = 0; t < seq.size(); ++t, ++row) {
      if (t + 1 == seq.size()) continue;
      const Eigen::ArrayXd l = logits.row(row).cast<double>().transpose().array();
      const Eigen::ArrayXd e = (l - l.maxCoeff()).exp();
      const Eigen::ArrayXd p = e / e.sum();
      sum -= (p * p.log()).sum();
      ++n;
    }
  }
  return sum / static_cast<double>(n);
}

// For tokens drawn from the model itself, E[−log p(next)] is the entropy
// of the distribution drawn from: the mean NLL of the samples estimates
// the mean entropy (a greedy or off-by-one sampler lands far below or
// above it). 64 × 63 predictions: the standard error is about 0.02 nats.
TEST(Sample, DrawsFollowTheModelsDistribution) {
  LlamaConfig c = testing::TinyConfig(false);
  LlamaWeights w = testing::RandomWeights(c, 5);
  w.lm_head *= 3.0f;  // peaked distributions: greedy would be obviously off
  const LlamaModel m = *LlamaModel::FromWeights(c, w);
  const std::vector<TokenSequence> seqs = *SampleSequences(m, {.sequences = 64, .length = 64});
  const double entropy = MeanEntropy(m, seqs);
  const double nll = Evaluate(m, seqs)->nll;
  EXPECT_NEAR(nll, entropy, 0.1) << "entropy " << entropy;
  EXPECT_GT(entropy, 0.5) << "the check needs uncertain predictions";
  EXPECT_LT(entropy, std::log(37.0) - 0.3) << "and non-uniform ones";
}

TEST(Sample, RejectsBadOptions) {
  const LlamaModel m = Tiny(true);
  EXPECT_THAT(std::string(SampleSequences(m, {.sequences = 0}).status().message()),
              HasSubstr("sequences must be >= 1"));
  EXPECT_THAT(std::string(SampleSequences(m, {.length = 1}).status().message()),
              HasSubstr("length must be within 2..64"));
  EXPECT_FALSE(SampleSequences(m, {.length = 65}).ok()) << "beyond max_position_embeddings";
  LlamaConfig c = testing::TinyConfig(true);
  c.bos_token_id = 37;
  const LlamaModel no_bos = *LlamaModel::FromWeights(c, testing::RandomWeights(c, 1));
  EXPECT_THAT(std::string(SampleSequences(no_bos, {.length = 4}).status().message()),
              HasSubstr("bos_token_id 37 is outside the vocabulary"));
}

}  // namespace
}  // namespace glvq::model
