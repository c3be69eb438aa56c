// Generation from a prompt (model/generate.h): greedy equals the argmax of
// the full forward pass on each prefix; sampling is seeded, top_k 1 is
// greedy, stop ids end it, bad options are refused.
#include "model/generate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/unit/llama_reference.h"

namespace glvq::model {
namespace {

using ::testing::HasSubstr;

LlamaModel Tiny() {
  const LlamaConfig c = testing::TinyConfig(false);
  return *LlamaModel::FromWeights(c, testing::RandomWeights(c, 5));
}

TEST(Generate, GreedyIsTheArgmaxOfTheForwardPassOnEachPrefix) {
  const LlamaModel m = Tiny();
  const TokenSequence prompt = {1, 5, 9};
  GenerateOptions o;
  o.max_new_tokens = 12;
  std::vector<int32_t> streamed;
  const auto out = Generate(m, prompt, o, [&](int32_t id) { streamed.push_back(id); });
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 12u);
  EXPECT_EQ(streamed, *out);
  TokenSequence seq = prompt;
  for (const int32_t id : *out) {
    const auto logits = m.Forward(std::vector<TokenSequence>{seq});
    ASSERT_TRUE(logits.ok());
    const auto last = logits->row(logits->rows() - 1);
    Eigen::Index best = 0;
    last.maxCoeff(&best);
    EXPECT_EQ(id, best) << "after " << seq.size() << " tokens";
    seq.push_back(id);
  }
}

TEST(Generate, SamplingIsSeededAndTopKOneIsGreedy) {
  const LlamaModel m = Tiny();
  GenerateOptions o;
  o.max_new_tokens = 20;
  o.temperature = 1.0;
  o.seed = 7;
  const auto a = Generate(m, {2, 3}, o), b = Generate(m, {2, 3}, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  o.seed = 8;
  EXPECT_NE(*Generate(m, {2, 3}, o), *a);
  o.top_k = 1;
  GenerateOptions greedy;
  greedy.max_new_tokens = 20;
  EXPECT_EQ(*Generate(m, {2, 3}, o), *Generate(m, {2, 3}, greedy));
}

TEST(Generate, StopsAfterAStopIdAndRefusesBadOptions) {
  const LlamaModel m = Tiny();
  GenerateOptions o;
  o.max_new_tokens = 12;
  const TokenSequence all = *Generate(m, {1}, o);
  o.stop_ids = {all[3]};
  const TokenSequence stopped = *Generate(m, {1}, o);
  const size_t first = std::find(all.begin(), all.end(), all[3]) - all.begin();
  EXPECT_EQ(stopped, TokenSequence(all.begin(), all.begin() + first + 1));
  EXPECT_THAT(Generate(m, {}, o).status().message(), HasSubstr("no tokens"));
  EXPECT_THAT(Generate(m, {999}, o).status().message(), HasSubstr("outside the vocabulary"));
  o.temperature = -1;
  EXPECT_EQ(Generate(m, {1}, o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glvq::model
