// Calibration Hessians: XᵀX/N of the oracle's linear-layer inputs, exact
// symmetry, PSD, and the on-disk form read back through the metadata.
#include "model/calibration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/safetensors/reader.h"
#include "model/eval.h"
#include "tests/support/test_support.h"
#include "tests/unit/llama_reference.h"

namespace glvq::model {
namespace {

using ::testing::HasSubstr;

const std::vector<TokenSequence> kSeqs = {{1, 5, 9, 33, 2}, {7}, {0, 36, 4, 4, 4, 12, 30, 8, 19}};

LlamaModel Tiny() {
  const LlamaConfig c = testing::TinyConfig(false);
  return *LlamaModel::FromWeights(c, testing::RandomWeights(c, 11));
}

// (1/N) Σ_t x_t x_tᵀ over the oracle's rows, by plain loops.
Eigen::MatrixXd NaiveHessian(const std::vector<testing::Rows>& per_sequence) {
  Eigen::MatrixXd h;
  int64_t rows = 0;
  for (const testing::Rows& seq : per_sequence) {
    for (const std::vector<double>& x : seq) {
      if (h.size() == 0) h = Eigen::MatrixXd::Zero(x.size(), x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        for (size_t j = 0; j < x.size(); ++j) h(i, j) += x[i] * x[j];
      }
      ++rows;
    }
  }
  return h / static_cast<double>(rows);
}

TEST(Calibration, HessiansEqualIndependentXtXOverN) {
  const LlamaModel m = Tiny();
  std::vector<testing::ReferenceRun> runs;
  for (const TokenSequence& seq : kSeqs)
    runs.push_back(testing::ReferenceForward(m.config(), m.weights(), seq));
  // A small batch budget: several batches must add up like one.
  auto acc = Calibrate(m, kSeqs, {4});
  ASSERT_TRUE(acc.ok()) << acc.status();
  for (int64_t l = 0; l < m.config().num_layers; ++l) {
    for (LinearInput input : kLinearInputs) {
      std::vector<testing::Rows> rows;
      for (const auto& run : runs) rows.push_back(run.inputs[l][static_cast<size_t>(input)]);
      const Eigen::MatrixXd want = NaiveHessian(rows);
      const Eigen::MatrixXd got = acc->Hessian(l, input);
      EXPECT_EQ(acc->rows(l, input), 15);
      ASSERT_EQ(got.rows(), InputWidth(m.config(), input));
      EXPECT_LT((got - want).cwiseAbs().maxCoeff(), 1e-5 * want.cwiseAbs().maxCoeff())
          << "layer " << l << " input " << static_cast<int>(input);
      EXPECT_TRUE(got == got.transpose()) << "exactly symmetric";
      const Eigen::VectorXd eig = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(got).eigenvalues();
      EXPECT_GE(eig.minCoeff(), -1e-12 * eig.maxCoeff()) << "PSD";
      EXPECT_GT(eig.maxCoeff(), 0.0);
    }
  }
}

// The output-aware Hessians (model/output_aware.h) by their definitions,
// in plain loops over the oracle's inputs and attention weights.
struct NaiveOutputAware {
  Eigen::MatrixXd v, gate, up, q, k;
};

// Σ_h α_h / d over the heads of (c_q[t], c_k[t]) for one sequence, from the
// header's definitions: C_t = Σ_j P_tj (v_j − v̄_t) k_jᵀ built entry by entry.
void NaiveQkWeights(const LlamaConfig& c, const testing::ReferenceRun& run, int64_t layer,
                    const std::vector<double>& alpha, std::vector<double>& cq,
                    std::vector<double>& ck) {
  const auto& [q, k, v] = run.qkv[layer];
  const size_t n = q.size(), d = static_cast<size_t>(c.head_dim);
  cq.assign(n, 0.0), ck.assign(n, 0.0);
  for (int64_t h = 0; h < c.num_heads; ++h) {
    const size_t qo = h * d, ko = (h / (c.num_heads / c.num_kv_heads)) * d;
    const testing::Rows& p = run.probs[layer][h];
    for (size_t t = 0; t < n; ++t) {
      std::vector<double> vbar(d, 0.0);
      for (size_t j = 0; j <= t; ++j)
        for (size_t a = 0; a < d; ++a) vbar[a] += p[t][j] * v[j][ko + a];
      double frob = 0, qn = 0;
      for (size_t a = 0; a < d; ++a) {
        qn += q[t][qo + a] * q[t][qo + a];
        for (size_t b = 0; b < d; ++b) {
          double ctab = 0;
          for (size_t j = 0; j <= t; ++j) ctab += p[t][j] * (v[j][ko + a] - vbar[a]) * k[j][ko + b];
          frob += ctab * ctab;
        }
      }
      cq[t] += alpha[h] * frob / double(d);
      for (size_t j = 0; j <= t; ++j) {
        double spread = 0;
        for (size_t a = 0; a < d; ++a) spread += (v[j][ko + a] - vbar[a]) * (v[j][ko + a] - vbar[a]);
        ck[j] += alpha[h] * p[t][j] * p[t][j] * qn * spread / double(d);
      }
    }
  }
}

NaiveOutputAware NaiveOutputAwareHessians(const LlamaConfig& c, const LlamaLayerWeights& w,
                                          const std::vector<testing::ReferenceRun>& runs,
                                          int64_t layer) {
  const int64_t n = c.hidden_size, d = c.head_dim;
  NaiveOutputAware out{Eigen::MatrixXd::Zero(n, n), Eigen::MatrixXd::Zero(n, n),
                       Eigen::MatrixXd::Zero(n, n), Eigen::MatrixXd::Zero(n, n),
                       Eigen::MatrixXd::Zero(n, n)};
  std::vector<double> alpha(static_cast<size_t>(c.num_heads)), wr(static_cast<size_t>(w.down_proj.cols()));
  double alpha_sum = 0, wr_sum = 0;
  for (int64_t h = 0; h < c.num_heads; ++h) {
    for (int64_t i = 0; i < w.o_proj.rows(); ++i)
      for (int64_t j = h * d; j < (h + 1) * d; ++j) alpha[h] += double(w.o_proj(i, j)) * w.o_proj(i, j);
    alpha_sum += alpha[h];
  }
  for (int64_t r = 0; r < w.down_proj.cols(); ++r) {
    for (int64_t i = 0; i < w.down_proj.rows(); ++i) wr[r] += double(w.down_proj(i, r)) * w.down_proj(i, r);
    wr_sum += wr[r];
  }
  int64_t tokens = 0;
  auto outer = [&](Eigen::MatrixXd& h, const std::vector<double>& x, double weight) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) h(i, j) += weight * x[i] * x[j];
  };
  for (double& a : alpha) a /= alpha_sum;
  for (const testing::ReferenceRun& run : runs) {
    const testing::Rows& xa = run.inputs[layer][0];
    const testing::Rows& xm = run.inputs[layer][2];
    std::vector<double> cq, ck;
    NaiveQkWeights(c, run, layer, alpha, cq, ck);
    for (size_t t = 0; t < xa.size(); ++t, ++tokens) {
      outer(out.q, xa[t], cq[t]);
      outer(out.k, xa[t], ck[t]);
      for (int64_t h = 0; h < c.num_heads; ++h) {
        std::vector<double> z(n, 0.0);
        for (size_t s = 0; s <= t; ++s)
          for (int64_t i = 0; i < n; ++i) z[i] += run.probs[layer][h][t][s] * xa[s][i];
        outer(out.v, z, alpha[h]);
      }
      double c_up = 0, c_gate = 0;
      for (int64_t r = 0; r < w.gate_proj.rows(); ++r) {
        double g = 0, u = 0;
        for (int64_t i = 0; i < n; ++i) g += double(w.gate_proj(r, i)) * xm[t][i], u += double(w.up_proj(r, i)) * xm[t][i];
        const double sig = 1.0 / (1.0 + std::exp(-g));
        c_up += wr[r] / wr_sum * (g * sig) * (g * sig);
        const double dg = u * sig * (1.0 + g * (1.0 - sig));
        c_gate += wr[r] / wr_sum * dg * dg;
      }
      outer(out.up, xm[t], c_up);
      outer(out.gate, xm[t], c_gate);
    }
  }
  for (Eigen::MatrixXd* h : {&out.v, &out.up, &out.gate, &out.q, &out.k}) *h /= double(tokens);
  return out;
}

TEST(Calibration, OutputAwareHessiansMatchTheirDefinitions) {
  const LlamaModel m = Tiny();
  std::vector<testing::ReferenceRun> runs;
  for (const TokenSequence& seq : kSeqs)
    runs.push_back(testing::ReferenceForward(m.config(), m.weights(), seq));
  // Two lanes and a small batch budget: the sums must add up like one pass.
  const auto acc = Calibrate(m, kSeqs, {4, 2, /*output_aware=*/true, /*output_aware_qk=*/true});
  ASSERT_TRUE(acc.ok()) << acc.status();
  ASSERT_NE(acc->output_aware(), nullptr);
  for (int64_t l = 0; l < m.config().num_layers; ++l) {
    const NaiveOutputAware want =
        NaiveOutputAwareHessians(m.config(), m.weights().layers[l], runs, l);
    const std::pair<OutputAwareWeight, const Eigen::MatrixXd*> cases[] = {
        {OutputAwareWeight::kVProj, &want.v},
        {OutputAwareWeight::kGateProj, &want.gate},
        {OutputAwareWeight::kUpProj, &want.up},
        {OutputAwareWeight::kQProj, &want.q},
        {OutputAwareWeight::kKProj, &want.k}};
    for (const auto& [w, expected] : cases) {
      const Eigen::MatrixXd got = acc->output_aware()->Hessian(l, w);
      EXPECT_LT((got - *expected).cwiseAbs().maxCoeff(), 1e-5 * expected->cwiseAbs().maxCoeff())
          << "layer " << l << " " << OutputAwareModule(w);
      EXPECT_TRUE(got == got.transpose());
    }
  }
  // On disk: q/k/v/gate/up read their own tensors, o/down the plain ones.
  testing::ScratchDir dir;
  ASSERT_TRUE(WriteHessians(dir / "h", *acc).ok());
  const auto st = SafetensorsModel::Open(dir / "h");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ((*LoadHessianFor(*st, "model.layers.1.self_attn.v_proj.weight"))->tensor,
            "model.layers.1.self_attn.v_proj.hessian");
  EXPECT_EQ((*LoadHessianFor(*st, "model.layers.1.mlp.up_proj.weight"))->tensor,
            "model.layers.1.mlp.up_proj.hessian");
  EXPECT_EQ((*LoadHessianFor(*st, "model.layers.1.self_attn.k_proj.weight"))->tensor,
            "model.layers.1.self_attn.k_proj.hessian");
  EXPECT_EQ((*LoadHessianFor(*st, "model.layers.1.self_attn.o_proj.weight"))->tensor,
            "model.layers.1.self_attn.o_proj.hessian");
  EXPECT_EQ(st->metadata().at("glvq.output_aware"),
            "self_attn.v_proj,mlp.gate_proj,mlp.up_proj,self_attn.q_proj,self_attn.k_proj");

  // Without q/k: the same v/gate/up Hessians; q/k keep the plain one.
  const auto vgu = Calibrate(m, kSeqs, {4, 2, /*output_aware=*/true, /*output_aware_qk=*/false});
  ASSERT_TRUE(vgu.ok());
  EXPECT_FALSE(vgu->output_aware()->Covers(OutputAwareWeight::kQProj));
  EXPECT_EQ(vgu->output_aware()->Hessian(1, OutputAwareWeight::kVProj),
            acc->output_aware()->Hessian(1, OutputAwareWeight::kVProj));
  testing::ScratchDir dir2;
  ASSERT_TRUE(WriteHessians(dir2 / "h", *vgu).ok());
  const auto st2 = SafetensorsModel::Open(dir2 / "h");
  ASSERT_TRUE(st2.ok());
  EXPECT_EQ((*LoadHessianFor(*st2, "model.layers.1.self_attn.k_proj.weight"))->tensor,
            "model.layers.1.self_attn.input.hessian");
  EXPECT_EQ(st2->metadata().at("glvq.output_aware"), "self_attn.v_proj,mlp.gate_proj,mlp.up_proj");
}

// Cached reference predictions (Predict, used by the real-model benchmark)
// give what the reference model itself gives, and refuse other sequences.
TEST(Calibration, CachedPredictionsEvaluateLikeTheReferenceModel) {
  const LlamaModel m = Tiny();
  auto cache = Predict(m, kSeqs, {4});
  ASSERT_TRUE(cache.ok()) << cache.status();
  auto direct = Evaluate(m, kSeqs, &m, {4});
  auto cached = Evaluate(m, kSeqs, *cache, {4});
  ASSERT_TRUE(direct.ok() && cached.ok());
  EXPECT_EQ(cached->predictions, direct->predictions);
  EXPECT_NEAR(cached->nll, direct->nll, 1e-12 * direct->nll);
  EXPECT_NEAR(*cached->nll_original, *direct->nll_original, 1e-12 * direct->nll);
  EXPECT_LT(*cached->kl, 1e-6);
  EXPECT_EQ(*cached->top1, *direct->top1);
  const std::vector<TokenSequence> fewer(kSeqs.begin(), kSeqs.begin() + 1);
  EXPECT_EQ(Evaluate(m, fewer, *cache).status().code(), absl::StatusCode::kInvalidArgument);
}

// Lanes (CalibrationOptions.lanes, `glvq calibrate --threads`) split the
// batches over threads; the sums agree with the serial ones to rounding and
// every token is counted once.
TEST(Calibration, LanesGiveTheSerialHessians) {
  const LlamaModel m = Tiny();
  auto serial = Calibrate(m, kSeqs, {4, 1});
  auto lanes = Calibrate(m, kSeqs, {4, 3});
  ASSERT_TRUE(serial.ok() && lanes.ok());
  for (int64_t l = 0; l < m.config().num_layers; ++l) {
    for (LinearInput input : kLinearInputs) {
      EXPECT_EQ(lanes->rows(l, input), serial->rows(l, input));
      const Eigen::MatrixXd a = serial->Hessian(l, input), b = lanes->Hessian(l, input);
      EXPECT_LT((a - b).cwiseAbs().maxCoeff(), 1e-12 * a.cwiseAbs().maxCoeff());
    }
  }
}

// Small integers keep every sum exact in double, so the accumulated
// Hessian must equal the naive sum bit for bit, over several observations
// and over more rows than one rank-k update takes.
TEST(Calibration, AccumulatorSumsExactly) {
  LlamaConfig c = testing::TinyConfig(true);
  c.num_layers = 1;
  HessianAccumulator acc(c);
  RowMatrix a(1100, 16), b(1, 16);
  for (Eigen::Index r = 0; r < a.rows(); ++r) {
    for (Eigen::Index j = 0; j < 16; ++j) a(r, j) = static_cast<float>((r * 7 + j * 3) % 11) - 5;
  }
  for (Eigen::Index j = 0; j < 16; ++j) b(0, j) = static_cast<float>(16 - j);
  acc.Observe(0, LinearInput::kMlp, a);
  acc.Observe(0, LinearInput::kMlp, b);
  EXPECT_EQ(acc.rows(0, LinearInput::kMlp), 1101);
  const Eigen::MatrixXd h = acc.Hessian(0, LinearInput::kMlp);
  for (Eigen::Index i = 0; i < 16; ++i) {
    for (Eigen::Index j = 0; j < 16; ++j) {
      double sum = double(b(0, i)) * b(0, j);
      for (Eigen::Index r = 0; r < a.rows(); ++r) sum += double(a(r, i)) * a(r, j);
      ASSERT_EQ(h(i, j), sum / 1101.0) << i << "," << j;
    }
  }
  EXPECT_EQ(acc.rows(0, LinearInput::kAttention), 0);
  EXPECT_TRUE(acc.Hessian(0, LinearInput::kAttention).isZero());
}

TEST(Calibration, NamesAndConsumers) {
  EXPECT_EQ(HessianTensorName(3, LinearInput::kAttention),
            "model.layers.3.self_attn.input.hessian");
  EXPECT_EQ(HessianTensorName(0, LinearInput::kAttentionOutput),
            "model.layers.0.self_attn.o_proj.hessian");
  EXPECT_EQ(HessianTensorName(1, LinearInput::kMlp), "model.layers.1.mlp.input.hessian");
  EXPECT_EQ(HessianTensorName(2, LinearInput::kMlpHidden), "model.layers.2.mlp.down_proj.hessian");
  EXPECT_THAT(WeightsReading(4, LinearInput::kAttention),
              ::testing::ElementsAre("model.layers.4.self_attn.q_proj.weight",
                                     "model.layers.4.self_attn.k_proj.weight",
                                     "model.layers.4.self_attn.v_proj.weight"));
  EXPECT_THAT(WeightsReading(0, LinearInput::kMlp),
              ::testing::ElementsAre("model.layers.0.mlp.gate_proj.weight",
                                     "model.layers.0.mlp.up_proj.weight"));
}

TEST(Calibration, WrittenHessiansAreFoundForEveryWeight) {
  const LlamaModel m = Tiny();
  CalibrationOptions plain;  // one Hessian per input (the output-aware ones: above)
  plain.output_aware = false;
  const HessianAccumulator acc = *Calibrate(m, kSeqs, plain);
  testing::ScratchDir dir;
  const auto out = dir / "hessians";
  ASSERT_TRUE(WriteHessians(out, acc, {{"glvq.sequences", "3"}}).ok());
  auto st = SafetensorsModel::Open(out);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->tensor_names().size(), 8u);
  EXPECT_EQ(st->metadata().at("glvq.format"), "glvq-hessians");
  EXPECT_EQ(st->metadata().at("glvq.tokens"), "15");
  EXPECT_EQ(st->metadata().at("glvq.sequences"), "3");
  for (int64_t l = 0; l < 2; ++l) {
    for (LinearInput input : kLinearInputs) {
      const Eigen::MatrixXd want = acc.Hessian(l, input);
      for (const std::string& weight : WeightsReading(l, input)) {
        auto h = LoadHessianFor(*st, weight);
        ASSERT_TRUE(h.ok()) << h.status();
        ASSERT_TRUE(h->has_value()) << weight;
        EXPECT_EQ((*h)->tensor, HessianTensorName(l, input));
        ASSERT_EQ((*h)->n, want.rows());
        EXPECT_EQ(std::memcmp((*h)->data.data(), want.data(), (*h)->data.size() * 8), 0)
            << "F64 round trip is exact (symmetric, so row- and column-major agree)";
        EXPECT_EQ(st->Find((*h)->tensor)->dtype, DType::kF64);
      }
    }
  }
  auto none = LoadHessianFor(*st, "lm_head.weight");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  const absl::Status again = WriteHessians(out, acc);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.message()), HasSubstr("already exists"));
}

}  // namespace
}  // namespace glvq::model
