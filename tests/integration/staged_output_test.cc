// A job's output streamed from its staged results (coordinator/output_writer.h)
// on the stories260K fixture, tensors split into ranges: byte for byte what
// writing every assembled tensor at once gives, while holding about one
// tensor at a time; damaged staged results are named, and nothing is
// written from them.
#include "coordinator/output_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/base/file_util.h"
#include "common/jobspec/job_spec.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/packed/packed_model.h"
#include "common/rpc/result_codec.h"
#include "coordinator/assembler.h"
#include "coordinator/job_store.h"
#include "coordinator/planner.h"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"
#include "common/quant/packed_config.h"
#include "worker/engine/quantizer.h"
#include "worker/service/task_inputs.h"

namespace glvq::coordinator {
namespace {

namespace fs = std::filesystem;
using glvq::testing::ReadTree;
using glvq::testing::ScratchDir;

constexpr char kJobId[] = "stories-000001";

class StagedOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path model = glvq::testing::Stories260KDir();
    if (!fs::exists(model / "model.safetensors")) GTEST_SKIP() << "no stories260K fixture";
    spec_ = glvq::testing::Stories260KJob(model, dir_ / "out", 100 << 10).spec();
    auto inputs = jobspec::CheckJobEnvironment(spec_);
    ASSERT_TRUE(inputs.ok()) << inputs.status();
    inputs_ = std::make_unique<jobspec::JobInputs>(*std::move(inputs));
    auto plan = PlanJob(spec_, *inputs_, {kJobId});
    ASSERT_TRUE(plan.ok()) << plan.status();
    tasks_ = plan->tasks;
    std::vector<v1::JournalRecord> records;
    auto store = JobStore::Open(dir_ / "state", &records);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    for (const v1::Task& task : tasks_) Stage(task);
  }

  // Quantizes the task as a worker would and stages its result.
  void Stage(const v1::Task& task) {
    auto data = worker::ReadTaskInputs(task);
    ASSERT_TRUE(data.ok()) << data.status();
    auto quantizer = engine::MakeQuantizer(*jobspec::ToQuantizerConfig(task.quantizer()));
    ASSERT_TRUE(quantizer.ok()) << quantizer.status();
    auto result = engine::QuantizeRange(**quantizer, engine::InputOf(*data, task.tensor()));
    ASSERT_TRUE(result.ok()) << result.status();
    const rpc::EncodedResult encoded = rpc::EncodeResult(task, *result);
    ASSERT_TRUE(store_->WriteResult(kJobId, encoded.header, encoded.payload).ok());
  }

  ResultLoader Loader() {
    return [this](const v1::Task& task) -> absl::StatusOr<CommittedResult> {
      auto r = store_->ReadResult(kJobId, task.id());
      if (!r.ok()) return r.status();
      return CommittedResult{std::move(r->header), std::move(r->payload)};
    };
  }

  // Every quantized tensor assembled in memory at once, by name.
  std::map<std::string, QuantizedTensor> AssembleAll() {
    std::map<std::string, std::vector<TensorPart>> parts;
    for (const v1::Task& task : tasks_) {
      auto r = store_->ReadResult(kJobId, task.id());
      EXPECT_TRUE(r.ok()) << r.status();
      auto t = rpc::DecodeResult(task, r->header, r->payload);
      EXPECT_TRUE(t.ok()) << t.status();
      parts[task.tensor()].push_back(
          {task.groups().first(), *std::move(t), rpc::SumsOf(r->header)});
    }
    std::map<std::string, QuantizedTensor> out;
    for (auto& [name, p] : parts) {
      auto t = AssembleTensor(std::move(p), inputs_->model.Find(name)->shape[1]);
      EXPECT_TRUE(t.ok()) << t.status();
      out[name] = *std::move(t);
    }
    return out;
  }

  // The first task of `tensor`.
  v1::Task TaskOf(const std::string& tensor) {
    const auto it = std::find_if(tasks_.begin(), tasks_.end(),
                                 [&](const v1::Task& t) { return t.tensor() == tensor; });
    EXPECT_NE(it, tasks_.end()) << tensor;
    return it == tasks_.end() ? v1::Task() : *it;
  }

  ScratchDir dir_;
  v1::JobSpec spec_;
  std::unique_ptr<jobspec::JobInputs> inputs_;
  std::vector<v1::Task> tasks_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(StagedOutputTest, TheOutputIsWhatWritingEveryTensorAtOnceGivesFromOneTensorAtATime) {
  OutputStats stats;
  auto quality = WriteJobOutput(spec_, tasks_, inputs_->model, Loader(), &stats);
  ASSERT_TRUE(quality.ok()) << quality.status();

  const std::map<std::string, QuantizedTensor> all = AssembleAll();
  std::vector<QuantizedTensor> tensors;
  uint64_t largest = 0, total = 0;
  for (const auto& [name, t] : all) {
    tensors.push_back(t);
    const uint64_t bytes = ComputeAccounting(t).total_bits / 8;
    largest = std::max(largest, bytes);
    total += bytes;
  }
  ASSERT_GT(tasks_.size(), all.size()) << "some tensors are split into ranges";
  const QuantizationConfig config =
      quant::PackedQuantizationConfig(*jobspec::ToQuantizerConfig(spec_.quantizer()));
  ASSERT_TRUE(WritePackedModel(dir_ / "reference", inputs_->model, tensors, config).ok());
  EXPECT_EQ(ReadTree(dir_ / "out"), ReadTree(dir_ / "reference"));

  // Held at once: one tensor's staged payload, its decoded ranges and the
  // assembled tensor, never the model's tensors together.
  EXPECT_GT(stats.peak_tensor_bytes, 0u);
  EXPECT_LE(stats.peak_tensor_bytes, 3 * largest);
  EXPECT_LT(stats.peak_tensor_bytes, total / 4);
  EXPECT_LE(stats.tensor_loads, 4 * all.size()) << "the manifest, then once per element size";

  auto verified = VerifyExistingOutput((dir_ / "out").string());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(quality->SerializeAsString(), verified->SerializeAsString());
  EXPECT_EQ(quality->tensors(), all.size());
}

TEST_F(StagedOutputTest, ADamagedStagedResultIsNamedAndNothingIsWritten) {
  const v1::Task victim = TaskOf("model.layers.2.mlp.up_proj.weight");
  const fs::path path = dir_ / "state" / "results" / kJobId / (victim.id() + ".result");
  std::string bytes = *ReadFileToString(path);
  bytes[bytes.size() - 5] ^= 0x10;  // in the payload
  glvq::testing::WriteFile(path, bytes);

  const auto damaged = FindDamagedResults(tasks_, Loader());
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0].first, victim.id());
  EXPECT_EQ(damaged[0].second.code(), absl::StatusCode::kDataLoss);

  auto quality = WriteJobOutput(spec_, tasks_, inputs_->model, Loader());
  EXPECT_EQ(quality.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(quality.status().message().find(victim.id()), absl::string_view::npos)
      << quality.status();
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find("out"), std::string::npos)
        << "left behind: " << entry.path();
  }
}

TEST_F(StagedOutputTest, BitsTheRangesReportMustBeTheBitsOfTheAssembledTensor) {
  const v1::Task victim = TaskOf("model.layers.0.self_attn.q_proj.weight");
  const ResultLoader honest = Loader();
  const ResultLoader lying = [&](const v1::Task& task) -> absl::StatusOr<CommittedResult> {
    auto r = honest(task);
    if (r.ok() && task.id() == victim.id()) {
      r->header.set_payload_bits(r->header.payload_bits() + 8);
    }
    return r;
  };
  auto quality = WriteJobOutput(spec_, tasks_, inputs_->model, lying);
  EXPECT_EQ(quality.status().code(), absl::StatusCode::kDataLoss) << quality.status();
  EXPECT_NE(quality.status().message().find("payload bits"), absl::string_view::npos)
      << quality.status();
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

}  // namespace
}  // namespace glvq::coordinator
