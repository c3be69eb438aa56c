// Fine-tuning's gradients against finite differences and dense algebra, on
// random tiny models: GainLinear's forward and backward, and the whole
// model's KL gradient (every kind of tunable parameter, with and without a
// rotation); and Finetune lowering the KL of a perturbed model, the same
// for any thread count.
#include "model/finetune.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/base/random.h"
#include "model/llama_backward.h"
#include "model/llama_ops.h"
#include "tests/unit/llama_reference.h"

namespace glvq::model {
namespace {

RowMatrix Gaussian(int64_t rows, int64_t cols, Rng& rng, double sigma = 1) {
  RowMatrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i)
    m.data()[i] = static_cast<float>(rng.Normal() * sigma);
  return m;
}

void Perturb(Eigen::VectorXf& v, Rng& rng, double sigma) {
  for (Eigen::Index i = 0; i < v.size(); ++i) v(i) += static_cast<float>(rng.Normal() * sigma);
}

GainLinear RandomGainLinear(int64_t rows, int64_t cols, bool rht, Rng& rng) {
  GainLinear l =
      GainLinear::Make(Gaussian(rows, cols, rng, 1 / std::sqrt(double(cols))),
                       rht ? std::optional(RhtSeeds{7, 11}) : std::nullopt, 4, true, true);
  Perturb(l.log_row_gain, rng, 0.2);
  Perturb(l.log_group_gain, rng, 0.2);
  return l;
}

TEST(GainLinear, ForwardAndBackwardAreTheDenseWeightsProducts) {
  Rng rng(1);
  for (const bool rht : {false, true}) {
    const GainLinear l = RandomGainLinear(12, 10, rht, rng);  // neither a power of two
    const RowMatrix w = l.Dense(), x = Gaussian(5, 10, rng), dy = Gaussian(5, 12, rng);
    GainLinearTape tape;
    const RowMatrix y = Forward(l, x, &tape);
    EXPECT_LT((y - x * w.transpose()).cwiseAbs().maxCoeff(), 1e-5) << rht;
    GainLinearGrad g;
    g.Resize(l);
    const RowMatrix dx = Backward(l, tape, dy, g);
    EXPECT_LT((dx - dy * w).cwiseAbs().maxCoeff(), 1e-5) << rht;
  }
}

// L(α, β) = Σ dy ⊙ y(x): its gradient is Backward's, by central differences.
TEST(GainLinear, GainGradientsMatchFiniteDifferences) {
  Rng rng(2);
  for (const bool rht : {false, true}) {
    GainLinear l = RandomGainLinear(12, 10, rht, rng);
    const RowMatrix x = Gaussian(5, 10, rng), dy = Gaussian(5, 12, rng);
    GainLinearTape tape;
    Forward(l, x, &tape);
    GainLinearGrad g;
    g.Resize(l);
    Backward(l, tape, dy, g);
    const auto loss = [&] { return double(Forward(l, x, nullptr).cwiseProduct(dy).sum()); };
    const auto check = [&](Eigen::VectorXf& v, const Eigen::VectorXd& grad) {
      for (Eigen::Index i = 0; i < v.size(); ++i) {
        const float keep = v(i);
        v(i) = keep + 1e-2f;
        const double up = loss();
        v(i) = keep - 1e-2f;
        const double down = loss();
        v(i) = keep;
        EXPECT_NEAR(grad(i), (up - down) / 2e-2, 2e-3 + 2e-3 * std::abs(grad(i))) << i;
      }
    };
    check(l.log_row_gain, g.log_row_gain);
    check(l.log_group_gain, g.log_group_gain);
  }
}

// The tiny model with every linear a GainLinear: the layer's first three
// rotated, random gains, perturbed norms.
TunableLlama TinyTunable(uint64_t seed) {
  const LlamaConfig c = testing::TinyConfig(/*tied=*/true);
  const LlamaWeights w = testing::RandomWeights(c, seed);
  Rng rng(seed + 100);
  TunableLlama m;
  m.config = c;
  m.embed_tokens = w.embed_tokens;
  m.norm = w.norm;
  for (const LlamaLayerWeights& lw : w.layers) {
    TunableLayer t;
    for (int s = 0; s < kNumLinearSlots; ++s) {
      t.linears[s] = GainLinear::Make(
          LinearSlotWeight(lw, s), s < 3 ? std::optional(RhtSeeds{uint64_t(s), 9}) : std::nullopt,
          4, true, true);
    }
    t.input_layernorm = lw.input_layernorm;
    t.post_attention_layernorm = lw.post_attention_layernorm;
    m.layers.push_back(std::move(t));
  }
  return m;
}

RowMatrix TeacherLogProbs(const LlamaModel& teacher, const TokenSequence& seq) {
  RowMatrix lp = *teacher.Forward(std::span(&seq, 1));
  LogSoftmaxRows(lp);
  return lp;
}

TEST(KlGradient, IsZeroAgainstItselfAndMatchesFiniteDifferences) {
  TunableLlama student = TinyTunable(3);
  ASSERT_TRUE(student.Check().ok());
  const LlamaModel same = *LlamaModel::FromWeights(student.config, student.DenseWeights());
  const TokenSequence seq = {1, 5, 9, 2, 30, 17, 4, 8, 22, 3};
  TunableGrad g;
  g.Resize(student);
  const double kl0 = *KlGradient(student, seq, TeacherLogProbs(same, seq), g);
  EXPECT_NEAR(kl0, 0, 1e-6);
  EXPECT_LT(g.layers[0].linears[kQ].log_row_gain.cwiseAbs().maxCoeff(), 1e-5);

  // Move every parameter away from the teacher, then compare gradients.
  Rng rng(4);
  for (TunableLayer& t : student.layers) {
    for (GainLinear& l : t.linears) {
      Perturb(l.log_row_gain, rng, 0.3);
      Perturb(l.log_group_gain, rng, 0.3);
    }
    Perturb(t.input_layernorm, rng, 0.3);
    Perturb(t.post_attention_layernorm, rng, 0.3);
  }
  Perturb(student.norm, rng, 0.3);
  const RowMatrix teacher = TeacherLogProbs(same, seq);
  g.Resize(student);
  ASSERT_GT(*KlGradient(student, seq, teacher, g), 1e-3);
  const auto kl = [&] {
    TunableGrad scratch;
    scratch.Resize(student);
    return *KlGradient(student, seq, teacher, scratch);
  };
  const auto check = [&](float& v, double grad, const char* what) {
    const float keep = v;
    v = keep + 5e-3f;
    const double up = kl();
    v = keep - 5e-3f;
    const double down = kl();
    v = keep;
    EXPECT_NEAR(grad, (up - down) / 1e-2, 1e-4 + 0.03 * std::abs(grad)) << what;
  };
  for (size_t l = 0; l < student.layers.size(); ++l) {
    for (int s = 0; s < kNumLinearSlots; ++s) {
      GainLinear& lin = student.layers[l].linears[s];
      const auto& gl = g.layers[l].linears[s];
      for (Eigen::Index i : {Eigen::Index{0}, lin.rows() - 1}) {
        check(lin.log_row_gain(i), gl.log_row_gain(i), LinearSlotName(s));
      }
      check(lin.log_group_gain(1), gl.log_group_gain(1), LinearSlotName(s));
    }
    check(student.layers[l].input_layernorm(2), g.layers[l].input_layernorm(2), "input norm");
    check(student.layers[l].post_attention_layernorm(5), g.layers[l].post_attention_layernorm(5),
          "post-attention norm");
  }
  check(student.norm(7), g.norm(7), "final norm");
}

TEST(Finetune, LowersTheKlOfAPerturbedModelTheSameForAnyThreadCount) {
  TunableLlama start = TinyTunable(5);
  const LlamaModel teacher = *LlamaModel::FromWeights(start.config, start.DenseWeights());
  Rng rng(6);
  for (TunableLayer& t : start.layers) {
    for (GainLinear& l : t.linears) Perturb(l.log_row_gain, rng, 0.3);
    Perturb(t.input_layernorm, rng, 0.3);
  }
  std::vector<TokenSequence> text;
  for (int s = 0; s < 8; ++s) {
    TokenSequence seq;
    for (int t = 0; t < 24; ++t) seq.push_back(static_cast<int32_t>(rng.Below(37)));
    text.push_back(seq);
  }
  FinetuneOptions o;
  o.steps = 60;
  o.seq_len = 12;
  o.learning_rate = 0.02;
  std::vector<TunableLlama> tuned;
  for (const int threads : {1, 2}) {
    o.threads = threads;
    tuned.push_back(start);
    auto r = Finetune(teacher, tuned.back(), text, o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->windows, 16);
    ASSERT_EQ(r->kl.size(), 60u);
    const double first = (r->kl[0] + r->kl[1] + r->kl[2]) / 3;
    const double last = (r->kl[57] + r->kl[58] + r->kl[59]) / 3;
    EXPECT_LT(last, 0.3 * first) << first << " -> " << last;
  }
  EXPECT_EQ(tuned[0].layers[1].linears[kDown].log_row_gain,
            tuned[1].layers[1].linears[kDown].log_row_gain);
  EXPECT_EQ(tuned[0].norm, tuned[1].norm);

  o.steps = 0;
  EXPECT_EQ(Finetune(teacher, tuned[0], text, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.steps = 1;
  EXPECT_EQ(Finetune(teacher, tuned[0], {}, o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glvq::model
