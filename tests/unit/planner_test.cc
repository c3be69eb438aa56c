// The planner: tensor selection, deterministic task ids and order,
// locations that point at the right bytes, splitting by memory budget
// only where the method allows it, and the cost estimates.
#include "coordinator/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <map>
#include <string>

#include "common/base/file_util.h"
#include "common/jobspec/job_spec.h"
#include "common/jobspec/quantizer_spec.h"
#include "coordinator/estimates.h"
#include "coordinator/tensor_selection.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_model.h"

namespace glvq::coordinator {
namespace {
namespace fs = std::filesystem;
using glvq::testing::ScratchDir;
using ::testing::HasSubstr;

v1::JobSpec SpecFor(const fs::path& model, quant::QuantizerConfig config = {}) {
  v1::JobSpec spec;
  spec.mutable_model()->set_path(model.string());
  spec.mutable_output()->set_path("/nonexistent/out");
  *spec.mutable_quantizer() = jobspec::FromQuantizerConfig(config);
  for (const std::string& p : jobspec::DefaultIncludePatterns())
    spec.mutable_tensors()->add_include(p);
  for (const std::string& p : jobspec::DefaultExcludePatterns())
    spec.mutable_tensors()->add_exclude(p);
  return spec;
}

jobspec::JobInputs Open(const fs::path& model) {
  auto m = SafetensorsModel::Open(model);
  EXPECT_TRUE(m.ok()) << m.status();
  return {*std::move(m), std::nullopt};
}

TEST(Planner, Stories260KDefaultSelection) {
  const fs::path dir = glvq::testing::Stories260KDir();
  if (!fs::exists(dir / "model.safetensors")) GTEST_SKIP() << "fixture stories260K not found";
  const jobspec::JobInputs inputs = Open(dir);
  auto plan = PlanJob(SpecFor(dir), inputs, {"job-1"});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->tasks.size(), 35u) << "5 layers x 7 projections, one task each";
  EXPECT_EQ(plan->totals.tensors_quantized, 35u);
  ASSERT_EQ(plan->pass_through.size(), 12u) << "embedding and 11 norms";
  EXPECT_EQ(plan->pass_through[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(plan->pass_through[0].reason, "excluded by '*embed*'");
  EXPECT_THAT(plan->pass_through[1].reason, HasSubstr("not a 2-D float tensor (F32 [64])"));

  const std::regex id_format("t-[0-9]{6}-[0-9a-f]{16}");
  std::set<std::string> ids;
  uint64_t weights = 0;
  for (size_t i = 0; i < plan->tasks.size(); ++i) {
    const v1::Task& t = plan->tasks[i];
    EXPECT_TRUE(std::regex_match(t.id(), id_format)) << t.id();
    EXPECT_EQ(t.index(), i);
    EXPECT_EQ(t.job_id(), "job-1");
    EXPECT_TRUE(ids.insert(t.id()).second);
    if (i > 0) {
      EXPECT_LT(plan->tasks[i - 1].id(), t.id()) << "id order is plan order";
      EXPECT_LT(plan->tasks[i - 1].tensor(), t.tensor()) << "tensor-name order";
    }
    EXPECT_EQ(t.groups().first(), 0u);
    EXPECT_EQ(t.groups().count(), t.total_groups());
    EXPECT_EQ(t.quantizer().method(), v1::METHOD_GLVQ);
    weights += t.weights();
  }
  EXPECT_EQ(plan->totals.weights, weights);
  EXPECT_EQ(plan->totals.weights, 5u * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 172));

  // The location names the bytes the model reader sees.
  const v1::Task& down = plan->tasks[0];
  ASSERT_EQ(down.tensor(), "model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(down.source().dtype(), "F32");
  EXPECT_THAT(down.source().shape(), ::testing::ElementsAre(64, 172));
  EXPECT_EQ(down.total_groups(), 2u) << "172 columns in groups of 128";
  auto file = MappedFile::Open(down.source().file());
  ASSERT_TRUE(file.ok());
  const TensorView view = *inputs.model.Get(down.tensor());
  ASSERT_EQ(down.source().length(), view.data.size());
  EXPECT_EQ(std::memcmp(file->get()->bytes().data() + down.source().offset(), view.data.data(),
                        view.data.size()),
            0);

  // Planning again gives the same tasks, byte for byte.
  auto again = PlanJob(SpecFor(dir), Open(dir), {"job-1"});
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->tasks.size(), plan->tasks.size());
  for (size_t i = 0; i < plan->tasks.size(); ++i) {
    EXPECT_EQ(again->tasks[i].SerializeAsString(), plan->tasks[i].SerializeAsString());
  }
}

class TinyPlanner : public ::testing::Test {
 protected:
  void SetUp() override { glvq::testing::WriteTinyModel(dir_ / "model"); }
  fs::path model() const { return dir_ / "model"; }
  ScratchDir dir_;
};

TEST_F(TinyPlanner, DefaultSelectionSkipsEmbeddingsHeadAndNorms) {
  auto plan = PlanJob(SpecFor(model()), Open(model()));
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> tensors;
  for (const v1::Task& t : plan->tasks) tensors.push_back(t.tensor());
  EXPECT_THAT(tensors, ::testing::ElementsAre("model.layers.0.mlp.down_proj.weight",
                                              "model.layers.0.mlp.up_proj.weight",
                                              "model.layers.0.self_attn.q_proj.weight"));
  ASSERT_EQ(plan->pass_through.size(), 3u);
  EXPECT_EQ(plan->pass_through[0].name, "lm_head.weight");
  EXPECT_EQ(plan->pass_through[0].reason, "excluded by '*lm_head*'");
  EXPECT_EQ(plan->totals.tensors_passed_through, 3u);
  // Pass-through bytes are read and written as they are.
  EXPECT_GT(plan->totals.write_bytes, (32u * 16 * 2 + 16) * 4);
}

TEST_F(TinyPlanner, IncludeAndExcludePatterns) {
  v1::JobSpec spec = SpecFor(model());
  spec.mutable_tensors()->clear_include();
  spec.mutable_tensors()->add_include("*.mlp.*");
  spec.mutable_tensors()->add_exclude("*down*");
  auto plan = PlanJob(spec, Open(model()));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->tasks.size(), 1u);
  EXPECT_EQ(plan->tasks[0].tensor(), "model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(plan->pass_through.size(), 5u);

  // No exclusions at all: the head and the embedding are quantized too.
  spec = SpecFor(model());
  spec.mutable_tensors()->clear_exclude();
  plan = PlanJob(spec, Open(model()));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->tasks.size(), 5u);

  spec = SpecFor(model());
  spec.mutable_tensors()->add_include("*.mlpx.*");
  auto bad = PlanJob(spec, Open(model()));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("spec.tensors.include[1]: pattern '*.mlpx.*' matches no 2-D float tensor"));

  spec = SpecFor(model());
  spec.mutable_tensors()->add_exclude("model.layers.*");
  bad = PlanJob(spec, Open(model()));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("selects no tensor to quantize"));
}

// spec.tensors.overrides: the first matching pattern sets a tensor's
// bits in its tasks; the others keep spec.quantizer's.
TEST_F(TinyPlanner, OverridesSetTheBitsOfTheTensorsTheyMatch) {
  quant::QuantizerConfig config;
  config.method = quant::Method::kRtn;
  v1::JobSpec spec = SpecFor(model(), config);
  auto* o = spec.mutable_tensors()->add_overrides();
  o->set_pattern("*.mlp.*");
  o->set_bits(4);
  o = spec.mutable_tensors()->add_overrides();
  o->set_pattern("*down_proj*");  // shadowed by the first for down_proj
  o->set_bits(3);
  auto plan = PlanJob(spec, Open(model()));
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, double> bits;
  for (const v1::Task& t : plan->tasks) bits[t.tensor()] = t.quantizer().bits();
  EXPECT_EQ(bits["model.layers.0.mlp.down_proj.weight"], 4);
  EXPECT_EQ(bits["model.layers.0.mlp.up_proj.weight"], 4);
  EXPECT_EQ(bits["model.layers.0.self_attn.q_proj.weight"], 2);

  // A pattern that matches no quantized tensor is a typo.
  spec.mutable_tensors()->mutable_overrides(1)->set_pattern("*lm_head*");  // passed through
  auto bad = PlanJob(spec, Open(model()));
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("spec.tensors.overrides[1].pattern '*lm_head*' matches no quantized tensor"));
  // The overridden quantizer must be valid: e8p has 2 bits only.
  config.method = quant::Method::kE8p;
  spec = SpecFor(model(), config);
  o = spec.mutable_tensors()->add_overrides();
  o->set_pattern("*");
  o->set_bits(3);
  bad = PlanJob(spec, Open(model()));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("spec.tensors.overrides[0]: "));
}

TEST(TensorSelection, GlobsMatchWholeNames) {
  EXPECT_TRUE(GlobMatch("*", "a.b.c"));
  EXPECT_TRUE(GlobMatch("*_proj.weight", "model.layers.0.mlp.up_proj.weight"));
  EXPECT_FALSE(GlobMatch("*_proj", "model.layers.0.mlp.up_proj.weight"));
  EXPECT_TRUE(GlobMatch("layers.?.x", "layers.7.x"));
  EXPECT_FALSE(GlobMatch("layers.?.x", "layers.17.x"));
  EXPECT_TRUE(GlobMatch("*.[qk]_proj.*", "a.k_proj.weight"));
  EXPECT_FALSE(GlobMatch("*.[qk]_proj.*", "a.v_proj.weight"));
}

// Splits the 16 x 300 down projection (groups of 64: 4 full, 1 of 44).
TEST_F(TinyPlanner, SplitsGlvqByColumnGroupsUnderABudget) {
  quant::QuantizerConfig config = quant::PresetConfig(quant::Preset::kPaper);
  config.dim = 4;
  config.group_size = 64;
  v1::JobSpec spec = SpecFor(model(), config);
  spec.mutable_tensors()->clear_include();
  spec.mutable_tensors()->add_include("*down_proj*");
  const uint64_t two_groups = EstimateTaskMemory(config, {16, 128, 2}, false);
  spec.mutable_workers()->set_max_task_memory_bytes(two_groups);
  auto plan = PlanJob(spec, Open(model()));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->tasks.size(), 3u) << "5 groups, at most 2 per task";
  uint32_t next = 0;
  std::set<std::string> ids;
  for (const v1::Task& t : plan->tasks) {
    EXPECT_EQ(t.groups().first(), next);
    next += t.groups().count();
    EXPECT_EQ(t.total_groups(), 5u);
    EXPECT_LE(t.memory_bytes(), two_groups);
    ids.insert(t.id());
  }
  EXPECT_EQ(next, 5u) << "the ranges tile the tensor";
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(plan->tasks[0].groups().count(), 2u);
  EXPECT_EQ(plan->tasks[2].groups().count(), 1u);
  EXPECT_EQ(plan->tasks[0].weights() + plan->tasks[1].weights() + plan->tasks[2].weights(),
            16u * 300);
  EXPECT_EQ(plan->tasks[2].weights(), 16u * 44) << "the ragged last group";

  // rtn splits too; a budget below one group cannot be met.
  config.method = quant::Method::kRtn;
  *spec.mutable_quantizer() = jobspec::FromQuantizerConfig(config);
  EXPECT_TRUE(PlanJob(spec, Open(model())).ok());
  spec.mutable_workers()->set_max_task_memory_bytes(1000);
  auto tiny = PlanJob(spec, Open(model()));
  EXPECT_EQ(tiny.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(tiny.status().message()), HasSubstr("a single column group needs"));
}

TEST_F(TinyPlanner, MethodsThatCoupleGroupsKeepTheTensorWhole) {
  quant::QuantizerConfig glvq = quant::PresetConfig(quant::Preset::kPaper);
  glvq.dim = 4;
  glvq.group_size = 64;
  quant::QuantizerConfig gptq = glvq;
  gptq.method = quant::Method::kGptq;
  quant::QuantizerConfig ldlq = glvq;
  ldlq.ldlq = true;
  quant::QuantizerConfig sdba = glvq;
  sdba.sdba = true;
  quant::QuantizerConfig rht = glvq;
  rht.rht = true;
  quant::QuantizerConfig e8p = glvq;
  e8p.method = quant::Method::kE8p;
  e8p.dim = 8;
  quant::QuantizerConfig trellis = glvq;
  trellis.method = quant::Method::kTrellis;
  quant::QuantizerConfig gains = glvq;
  gains.glvq.row_gain = true;
  for (const auto& [config, why] : std::vector<std::pair<quant::QuantizerConfig, std::string>>{
           {gptq, "gptq"}, {ldlq, "ldlq"}, {sdba, "sdba"}, {rht, "rht"}, {e8p, "e8p"},
           {trellis, "trellis"}, {gains, "row gains"}}) {
    v1::JobSpec spec = SpecFor(model(), config);
    spec.mutable_tensors()->clear_include();
    spec.mutable_tensors()->add_include("*down_proj*");
    const uint64_t whole = EstimateTaskMemory(config, {16, 300, 5}, false);
    // Enough for the whole tensor: one task.
    spec.mutable_workers()->set_max_task_memory_bytes(whole);
    auto plan = PlanJob(spec, Open(model()));
    ASSERT_TRUE(plan.ok()) << why << ": " << plan.status();
    EXPECT_EQ(plan->tasks.size(), 1u) << why;
    // One byte less: no split, RESOURCE_EXHAUSTED with the size needed.
    spec.mutable_workers()->set_max_task_memory_bytes(whole - 1);
    plan = PlanJob(spec, Open(model()));
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted) << why;
    EXPECT_THAT(std::string(plan.status().message()),
                HasSubstr("tensor 'model.layers.0.mlp.down_proj.weight' needs " +
                          std::to_string(whole) + " bytes"));
    EXPECT_THAT(std::string(plan.status().message()), HasSubstr(why));
    EXPECT_FALSE(CanSplitTensor(config)) << why;
  }
  EXPECT_TRUE(CanSplitTensor(glvq));
}

TEST_F(TinyPlanner, CalibratedTasksNameTheirHessians) {
  // A calibration directory as `glvq calibrate` writes it: the metadata maps
  // each weight to its Hessian tensor.
  const fs::path hdir = dir_ / "hessians";
  fs::create_directories(hdir);
  std::vector<double> h300(300 * 300, 0.0), h16(16 * 16, 0.0);
  std::vector<TensorToWrite> tensors = {
      {"l0.mlp.down.hessian",
       DType::kF64,
       {300, 300},
       std::as_bytes(std::span<const double>(h300))},
      {"l0.input.hessian", DType::kF64, {16, 16}, std::as_bytes(std::span<const double>(h16))}};
  ASSERT_TRUE(
      WriteSafetensorsModel(hdir, tensors,
                            {{"model.layers.0.mlp.down_proj.weight", "l0.mlp.down.hessian"},
                             {"model.layers.0.mlp.up_proj.weight", "l0.input.hessian"},
                             {"model.layers.0.self_attn.q_proj.weight", "l0.input.hessian"}})
          .ok());
  v1::JobSpec spec = SpecFor(model());
  spec.mutable_calibration()->set_hessians(hdir.string());
  jobspec::JobInputs inputs = Open(model());
  inputs.hessians = *SafetensorsModel::Open(hdir);
  auto plan = PlanJob(spec, inputs);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const v1::Task& down = plan->tasks[0];
  EXPECT_EQ(down.hessian().dtype(), "F64");
  EXPECT_THAT(down.hessian().shape(), ::testing::ElementsAre(300, 300));
  EXPECT_EQ(down.hessian().length(), 300u * 300 * 8);
  EXPECT_GT(down.memory_bytes(), 2u * 300 * 300 * 8) << "Hessian blocks counted";

  // A weight without a Hessian cannot be planned.
  spec.mutable_tensors()->clear_exclude();
  auto missing = PlanJob(spec, inputs);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("no Hessian for 'lm_head.weight'"));
}

TEST(Planner, TaskIdsDependOnTensorAndRange) {
  EXPECT_EQ(TaskId(3, "a.weight", 0, 2), TaskId(3, "a.weight", 0, 2));
  EXPECT_NE(TaskId(3, "a.weight", 0, 2), TaskId(3, "a.weight", 0, 3));
  EXPECT_NE(TaskId(3, "a.weight", 0, 2), TaskId(3, "b.weight", 0, 2));
  EXPECT_EQ(TaskId(3, "a.weight", 0, 2).substr(0, 9), "t-000003-");
  EXPECT_EQ(TaskId(3, "a.weight", 0, 2).size(), 25u);
}

TEST(Estimates, MemoryGrowsWithTheSliceAndWithHessians) {
  quant::QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);  // no RHT, no LDLQ
  const uint64_t one = EstimateTaskMemory(c, {4096, 128, 1}, false);
  const uint64_t two = EstimateTaskMemory(c, {4096, 256, 2}, false);
  EXPECT_GT(two, one);
  EXPECT_GE(one, 24u * 4096 * 128);
  EXPECT_EQ(EstimateTaskMemory(c, {4096, 128, 1}, true) - one, 2u * 8 * 128 * 128);
  c.method = quant::Method::kGptq;
  EXPECT_EQ(
      EstimateTaskMemory(c, {4096, 128, 1}, true) - EstimateTaskMemory(c, {4096, 128, 1}, false),
      2u * 8 * 128 * 128);
}

TEST(Estimates, PackedBytesFollowTheFormat) {
  quant::QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);  // glvq, 2 bits, d = 8, no row gains
  // 8 x 128, one group: codes 8*128*2/8 = 256, bits 1, offset 8,
  // generators 8*8*4 = 256, mu 4, scale 4.
  EXPECT_EQ(EstimatePackedBytes(c, {8, 128, 1}), 256u + 1 + 8 + 256 + 4 + 4);
  c.method = quant::Method::kRtn;
  c.bits = 4;
  EXPECT_EQ(EstimatePackedBytes(c, {8, 128, 1}), 512u + 1 + 8 + 8 * 8);
  c.method = quant::Method::kE8p;
  c.bits = 2;
  // 8 rows x ceil(100/8) = 13 codewords x 2 bytes.
  EXPECT_EQ(EstimatePackedBytes(c, {8, 100, 1}), 8u * 13 * 2 + 1 + 8 + 4);
}

TEST(Estimates, ThroughputConstants) {
  quant::QuantizerConfig c;
  EXPECT_EQ(WeightsPerSecond(c), 0.4e6);  // the default: no companding
  c.glvq.mu_max = 5;
  EXPECT_EQ(WeightsPerSecond(c), 0.06e6);  // the µ grid: one pass per µ
  c.dim = 32;
  EXPECT_EQ(WeightsPerSecond(c), 0.17e6);
  c.method = quant::Method::kRtn;
  EXPECT_EQ(WeightsPerSecond(c), 1.0e6);
  EXPECT_DOUBLE_EQ(EstimateSeconds(c, 8'000'000), 8.0);
  c.method = quant::Method::kTrellis;
  c.trellis.window = 10;  // a quarter of L = 12's states
  EXPECT_DOUBLE_EQ(WeightsPerSecond(c), 4 * 0.16e6);
}

}  // namespace
}  // namespace glvq::coordinator
