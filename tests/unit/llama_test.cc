// The forward pass, evaluation and calibration against the independent
// double-precision oracle in llama_reference.h, on random tiny models.
#include "model/llama.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/calibration.h"
#include "model/eval.h"
#include "tests/unit/llama_reference.h"

namespace glvq::model {
namespace {

using ::testing::HasSubstr;
using testing::ReferenceForward;

const std::vector<TokenSequence> kBatch = {{1, 5, 9, 33, 2}, {7}, {0, 36, 4, 4, 4, 12, 30, 8, 19}};

LlamaModel Tiny(bool tied, uint64_t seed = 1) {
  const LlamaConfig c = testing::TinyConfig(tied);
  return *LlamaModel::FromWeights(c, testing::RandomWeights(c, seed));
}

TEST(LlamaForward, MatchesDoubleReferenceTiedAndUntied) {
  for (bool tied : {true, false}) {
    const LlamaModel m = Tiny(tied);
    auto logits = m.Forward(kBatch);
    ASSERT_TRUE(logits.ok()) << logits.status();
    ASSERT_EQ(logits->rows(), 15);
    ASSERT_EQ(logits->cols(), 37);
    Eigen::Index row = 0;
    for (const TokenSequence& seq : kBatch) {
      const testing::ReferenceRun ref = ReferenceForward(m.config(), m.weights(), seq);
      for (size_t t = 0; t < seq.size(); ++t, ++row) {
        for (Eigen::Index v = 0; v < 37; ++v) {
          ASSERT_NEAR((*logits)(row, v), ref.logits[t][v], 2e-5) << "tied " << tied << " t " << t;
        }
      }
    }
  }
}

TEST(LlamaForward, BatchingDoesNotChangeASequencesLogits) {
  const LlamaModel m = Tiny(false);
  const RowMatrix all = *m.Forward(kBatch);
  Eigen::Index row = 0;
  for (const TokenSequence& seq : kBatch) {
    const RowMatrix alone = *m.Forward(std::vector<TokenSequence>{seq});
    EXPECT_LT((all.middleRows(row, alone.rows()) - alone).cwiseAbs().maxCoeff(), 1e-5);
    row += alone.rows();
  }
}

TEST(LlamaForward, RejectsBadIdsAndEmptySequences) {
  const LlamaModel m = Tiny(true);
  auto bad = m.Forward(std::vector<TokenSequence>{{1, 37}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("37"));
  EXPECT_FALSE(m.Forward(std::vector<TokenSequence>{{1}, {}}).ok());
}

TEST(LlamaForward, FromWeightsChecksEveryShape) {
  const LlamaConfig c = testing::TinyConfig(false);
  LlamaWeights w = testing::RandomWeights(c, 3);
  w.layers[1].k_proj.resize(4, 16);
  auto r = LlamaModel::FromWeights(c, w);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("k_proj is 4x16, expected 8x16"));
  LlamaWeights no_head = testing::RandomWeights(c, 3);
  no_head.lm_head.resize(0, 0);
  EXPECT_FALSE(LlamaModel::FromWeights(c, no_head).ok()) << "untied needs lm_head";
}

// Σ over predictions of −log softmax(logits)[next], from the oracle.
double ReferenceNll(const LlamaModel& m, const std::vector<TokenSequence>& seqs) {
  double sum = 0;
  int64_t n = 0;
  for (const TokenSequence& seq : seqs) {
    const testing::ReferenceRun ref = ReferenceForward(m.config(), m.weights(), seq);
    for (size_t t = 0; t + 1 < seq.size(); ++t, ++n) {
      double z = 0;
      for (double l : ref.logits[t]) z += std::exp(l);
      sum += std::log(z) - ref.logits[t][seq[t + 1]];
    }
  }
  return sum / static_cast<double>(n);
}

TEST(Evaluate, NllMatchesReferenceAndDoesNotDependOnBatching) {
  const LlamaModel m = Tiny(false);
  auto r = Evaluate(m, kBatch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sequences, 3);
  EXPECT_EQ(r->predictions, 4 + 0 + 8);
  EXPECT_NEAR(r->nll, ReferenceNll(m, kBatch), 1e-5);
  EXPECT_DOUBLE_EQ(r->ppl, std::exp(r->nll));
  EXPECT_FALSE(r->kl.has_value());
  for (int64_t batch_tokens : {1, 6, 100}) {
    auto b = Evaluate(m, kBatch, nullptr, {batch_tokens});
    ASSERT_TRUE(b.ok());
    EXPECT_NEAR(b->nll, r->nll, 1e-6) << batch_tokens;
  }
}

TEST(Evaluate, ModelAgainstItselfHasZeroKlAndFullAgreement) {
  const LlamaModel m = Tiny(true);
  auto r = Evaluate(m, kBatch, &m);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r->kl, 0.0);
  EXPECT_EQ(*r->top1, 1.0);
  EXPECT_EQ(*r->nll_original, r->nll);
}

TEST(Evaluate, KlOfADifferentModelMatchesReference) {
  const LlamaModel p = Tiny(false, 1);
  LlamaWeights w = p.weights();
  w.layers[0].v_proj *= 1.5f;  // a perturbed "quantized" model
  const LlamaModel q = *LlamaModel::FromWeights(p.config(), w);
  auto r = Evaluate(q, kBatch, &p);
  ASSERT_TRUE(r.ok()) << r.status();
  double kl = 0;
  int64_t n = 0;
  for (const TokenSequence& seq : kBatch) {
    const auto rp = ReferenceForward(p.config(), p.weights(), seq);
    const auto rq = ReferenceForward(q.config(), q.weights(), seq);
    for (size_t t = 0; t + 1 < seq.size(); ++t, ++n) {
      double zp = 0, zq = 0;
      for (size_t v = 0; v < rp.logits[t].size(); ++v) {
        zp += std::exp(rp.logits[t][v]);
        zq += std::exp(rq.logits[t][v]);
      }
      for (size_t v = 0; v < rp.logits[t].size(); ++v) {
        const double lp = rp.logits[t][v] - std::log(zp), lq = rq.logits[t][v] - std::log(zq);
        kl += std::exp(lp) * (lp - lq);
      }
    }
  }
  EXPECT_GT(*r->kl, 1e-4);
  EXPECT_NEAR(*r->kl, kl / static_cast<double>(n), 1e-5);
  EXPECT_NEAR(*r->nll_original, ReferenceNll(p, kBatch), 1e-5);
  EXPECT_NEAR(r->nll, ReferenceNll(q, kBatch), 1e-5);
  EXPECT_GE(*r->top1, 0.0);
  EXPECT_LE(*r->top1, 1.0);
}

TEST(Evaluate, NeedsSomethingToPredict) {
  const LlamaModel m = Tiny(true);
  auto r = Evaluate(m, std::vector<TokenSequence>{{1}, {2}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no sequence has two or more tokens"));
}

TEST(Evaluate, RefusesSequencesLongerThanTheContext) {
  const LlamaModel m = Tiny(true);  // max_position_embeddings 64
  const TokenSequence fits(64, 3), too_long(65, 3);
  EXPECT_TRUE(Evaluate(m, std::vector<TokenSequence>{fits}).ok());
  auto r = Evaluate(m, std::vector<TokenSequence>{fits, too_long});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("sequence 1 has 65 tokens, more than the model's context of 64"));
}

TEST(Evaluate, BatchesKeepOrderAndNeverSplitASequence) {
  const std::vector<TokenSequence> seqs = {{1, 2, 3}, {4}, {5, 6}, {7, 8, 9, 10, 11}, {12}};
  const auto batches = MakeBatches(seqs, 4);
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[0].size(), 2u);  // 3 + 1 tokens
  EXPECT_EQ(batches[1].size(), 1u);  // 2, and 2 + 5 would exceed 4
  EXPECT_EQ(batches[2].size(), 1u);  // 5 tokens: over the budget, but kept whole
  EXPECT_EQ(batches[2][0][0], 7);
  EXPECT_EQ(batches[3][0][0], 12);
}

}  // namespace
}  // namespace glvq::model
