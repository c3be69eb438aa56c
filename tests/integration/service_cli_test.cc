// The service end to end, as a user runs it: a glvq-coordinator process,
// glvq-worker processes, and the glvq CLI (submit --wait, watch, status,
// cancel, workers), against the stories260K fixture. Includes the crash
// cases: kill -9 of a worker mid-task and of the coordinator mid-job.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/packed/packed_model.h"
#include "common/quant/config.h"
#include "common/safetensors/reader.h"
#include "coordinator/journal.h"
#include "model/calibration.h"
#include "nlohmann/json.hpp"
#include "tests/support/child_process.h"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"

namespace glvq::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Bin(const std::string& name) { return (BinDir() / name).string(); }

class ServiceCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Stories260KDir() / "model.safetensors")) GTEST_SKIP() << "no fixture";
    WriteJobYaml(Stories260KJob(Stories260KDir(), dir_ / "out", 100 << 10), dir_ / "job.yaml");
  }

  // Starts the coordinator (on `port`, 0: any) and returns its port.
  int StartCoordinator(int port = 0, const std::string& lease_seconds = "30") {
    fs::remove(dir_ / "port");
    coordinator_ = StartChild(
        std::vector<std::string>{Bin("glvq-coordinator"), "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--state-dir",
                                 (dir_ / "state").string(), "--port-file",
                                 (dir_ / "port").string(), "--lease-seconds", lease_seconds},
        dir_ / "coordinator.log");
    port_ = WaitForPortFile(dir_ / "port");
    EXPECT_GT(port_, 0) << "coordinator did not start";
    return port_;
  }

  std::unique_ptr<ChildProcess> StartWorker(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {Bin("glvq-worker"), "--coordinator", Address()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return StartChild(argv, dir_ / "workers.log");
  }

  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }

  CommandResult Glvq(const std::string& args) {
    return RunCommand(Bin("glvq") + " " + args + " --coordinator " + Address());
  }

  // Submits job.yaml without waiting; the job id.
  std::string Submit() {
    const CommandResult r = Glvq("submit " + (dir_ / "job.yaml").string() + " --json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false).value("id", "");
  }

  json Status(const std::string& id) {
    return json::parse(Glvq("status " + id + " --json").out, nullptr, false);
  }

  // The output of job.yaml run in embedded mode with `workers` workers.
  std::map<std::string, std::string> Embedded(int workers) {
    const fs::path out = dir_ / ("embedded-" + std::to_string(workers));
    const CommandResult r =
        RunCommand(Bin("glvq") + " quantize --config " + (dir_ / "job.yaml").string() + " --out " +
                   out.string() + " --workers " + std::to_string(workers));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("total:"), std::string::npos) << r.out;  // the quality report
    return ReadTree(out);
  }

  ScratchDir dir_;
  std::unique_ptr<ChildProcess> coordinator_;
  int port_ = 0;
};

TEST_F(ServiceCliTest, SubmitWaitWithWorkerProcessesMatchesEmbeddedMode) {
  StartCoordinator();
  auto shared = StartWorker();
  auto streaming = StartWorker({"--no-shared-fs"});
  const CommandResult r = Glvq("submit " + (dir_ / "job.yaml").string() + " --wait");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("SUCCEEDED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total:"), std::string::npos) << r.out;

  const auto one = Embedded(1);
  EXPECT_EQ(Embedded(4), one);
  EXPECT_EQ(ReadTree(dir_ / "out"), one);

  const json workers = json::parse(Glvq("workers --json").out, nullptr, false);
  ASSERT_EQ(workers["workers"].size(), 2u);
  // SIGTERM: workers drain and exit 0, then the coordinator.
  shared->Signal(SIGTERM);
  streaming->Signal(SIGTERM);
  EXPECT_EQ(shared->Wait(), 0);
  EXPECT_EQ(streaming->Wait(), 0);
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0);
}

TEST_F(ServiceCliTest, AWorkerKilledMidTaskLosesOnlyItsLease) {
  StartCoordinator(0, "1");
  auto slow = StartWorker({"--task-delay-ms", "5000"});
  const std::string id = Submit();
  ASSERT_FALSE(id.empty());
  // Wait until the slow worker holds a task, then kill it hard.
  bool holding = false;
  for (int i = 0; i < 200 && !holding; ++i) {
    const json w = json::parse(Glvq("workers --json").out, nullptr, false);
    holding = w.contains("workers") && !w["workers"].empty() &&
              !w["workers"][0]["taskIds"].empty();
    if (!holding) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(holding);
  slow->Signal(SIGKILL);
  EXPECT_EQ(slow->Wait(), 128 + SIGKILL);
  auto healthy = StartWorker();
  const CommandResult watch = Glvq("watch " + id);
  ASSERT_EQ(watch.exit_code, 0) << watch.out << watch.err;
  EXPECT_GE(Status(id)["status"]["progress"]["taskRetries"].get<int>(), 1);
  EXPECT_EQ(ReadTree(dir_ / "out"), Embedded(1));
}

TEST_F(ServiceCliTest, AKilledCoordinatorResumesFromItsJournal) {
  const int port = StartCoordinator();
  auto worker = StartWorker({"--task-delay-ms", "30"});
  const std::string id = Submit();
  ASSERT_FALSE(id.empty());
  int done = 0;
  for (int i = 0; i < 400 && done < 5; ++i) {
    done = Status(id)["status"]["progress"].value("tasksDone", 0);
    absl::SleepFor(absl::Milliseconds(25));
  }
  ASSERT_GE(done, 5);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
  StartCoordinator(port);  // same address: the worker reconnects by itself
  const json resumed = Status(id);
  EXPECT_GE(resumed["status"]["progress"].value("tasksDone", 0), done);
  const CommandResult watch = Glvq("watch " + id);
  ASSERT_EQ(watch.exit_code, 0) << watch.out << watch.err;
  EXPECT_EQ(ReadTree(dir_ / "out"), Embedded(1));

  // Committed tasks were not redone: one commit record per task.
  std::vector<v1::JournalRecord> records;
  ASSERT_TRUE(coordinator::Journal::Open(dir_ / "state" / "journal", &records).ok());
  std::map<std::string, int> commits;
  for (const auto& r : records) {
    if (r.has_committed()) ++commits[r.committed().task_id()];
  }
  EXPECT_EQ(commits.size(), Status(id)["status"]["plan"]["tasks"].get<size_t>());
  for (const auto& [task, n] : commits) EXPECT_EQ(n, 1) << task;
}

// tr(A H Aᵀ) over the rows of the rows × n matrix A.
double WeightedNorm(const std::vector<double>& a, const std::vector<double>& h, int64_t n) {
  double sum = 0;
  for (size_t r = 0; r < a.size() / n; ++r) {
    const double* row = a.data() + r * n;
    for (int64_t i = 0; i < n; ++i) {
      double hi = 0;
      for (int64_t j = 0; j < n; ++j) hi += h[i * n + j] * row[j];
      sum += row[i] * hi;
    }
  }
  return sum;
}

// With calibration Hessians (`glvq calibrate` on the fixture's tokens) and
// glvq with LDLQ, which quantizes against H: a worker that streams its
// inputs (Hessian blocks over FetchTensor) gives the bytes of embedded mode,
// and every tensor's proxy loss is tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) with that
// tensor's calibrated H (damped by the job's 1 % of its mean diagonal).
TEST_F(ServiceCliTest, AHessianJobMatchesEmbeddedModeAndItsProxyLossUsesTheHessians) {
  const fs::path model = Stories260KDir(), hessians = dir_ / "hessians";
  const CommandResult calibrated =
      RunCommand(Bin("glvq") + " calibrate --model " + model.string() + " --tokens " +
                 (model / "eval_tokens_seed1234.txt").string() + " --out " + hessians.string());
  ASSERT_EQ(calibrated.exit_code, 0) << calibrated.err;
  WriteFile(dir_ / "job.yaml",
            "apiVersion: glvq.io/v1\nkind: QuantizationJob\nmetadata: {name: hessian}\nspec:\n"
            "  model: {path: " + model.string() + "}\n"
            "  calibration: {hessians: " + hessians.string() + "}\n"
            "  output: {path: " + (dir_ / "out").string() + "}\n"
            "  quantizer: {method: glvq, bits: 2, dim: 8, groupSize: 32, ldlq: true}\n");
  StartCoordinator();
  auto streaming = StartWorker({"--no-shared-fs"});
  const CommandResult r = Glvq("submit " + (dir_ / "job.yaml").string() + " --wait");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(ReadTree(dir_ / "out"), Embedded(1));

  auto packed = PackedModel::Open(dir_ / "out");
  auto source = SafetensorsModel::Open(model);
  auto h_files = SafetensorsModel::Open(hessians);
  ASSERT_TRUE(packed.ok() && source.ok() && h_files.ok());
  int checked = 0, differs_from_mse = 0;
  for (const ManifestTensor& t : packed->manifest().tensors) {
    if (!t.quantized) continue;
    auto h = model::LoadHessianFor(*h_files, t.name);
    ASSERT_TRUE(h.ok() && h->has_value()) << t.name;
    const int64_t n = (*h)->n;
    std::vector<double> damped = (*h)->data;
    double mean_diagonal = 0;
    for (int64_t i = 0; i < n; ++i) mean_diagonal += damped[i * (n + 1)];
    mean_diagonal /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) damped[i * (n + 1)] += 0.01 * mean_diagonal;

    auto view = source->Get(t.name);
    ASSERT_TRUE(view.ok());
    std::vector<float> w(view->NumElements());
    ASSERT_TRUE(ConvertToF32(view->dtype, view->data, w).ok());
    auto w_hat = packed->Dequantize(t.name);
    ASSERT_TRUE(w_hat.ok()) << w_hat.status();
    std::vector<double> w64(w.begin(), w.end()), error(w.size());
    for (size_t i = 0; i < w.size(); ++i) error[i] = w[i] - static_cast<double>((*w_hat)[i]);
    const double proxy = WeightedNorm(error, damped, n) / WeightedNorm(w64, damped, n);
    ASSERT_TRUE(t.quality.has_value()) << t.name;
    EXPECT_NEAR(t.quality->proxy_loss, proxy, 1e-6 * proxy) << t.name;
    differs_from_mse += std::abs(t.quality->proxy_loss - t.quality->nmse) > 0.01 * t.quality->nmse;
    ++checked;
  }
  EXPECT_EQ(checked, 35);
  EXPECT_GT(differs_from_mse, 30) << "H = I would make the proxy loss the NMSE";
}

// gRPC sends even loopback traffic through $grpc_proxy / $https_proxy /
// $http_proxy unless told not to: every glvq channel is (ChannelArgs).
TEST_F(ServiceCliTest, AProxyInTheEnvironmentIsNotUsed) {
  for (const char* name : {"grpc_proxy", "https_proxy", "http_proxy"}) {
    ASSERT_EQ(::setenv(name, "http://127.0.0.1:9", 1), 0);  // discard: nothing listens
  }
  StartCoordinator();
  auto worker = StartWorker();
  const CommandResult r = Glvq("submit " + (dir_ / "job.yaml").string() + " --wait");
  for (const char* name : {"grpc_proxy", "https_proxy", "http_proxy"}) ::unsetenv(name);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// `--backend auto` on a machine without a usable GPU runs the CPU engine
// and says so; `--backend cuda` there refuses to start.
TEST_F(ServiceCliTest, AutoBackendFallsBackToTheCpuEngineWithoutAGpu) {
  StartCoordinator();
  const CommandResult cuda =
      RunCommand(Bin("glvq-worker") + " --backend cuda --coordinator " + Address());
  if (cuda.exit_code != 1) GTEST_SKIP() << "a GPU is usable here; tests/gpu covers it";
  EXPECT_NE(cuda.err.find("--backend cuda, but no usable GPU"), std::string::npos) << cuda.err;
  auto worker = StartWorker({"--backend", "auto"});
  const CommandResult r = Glvq("submit " + (dir_ / "job.yaml").string() + " --wait");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const json workers = json::parse(Glvq("workers --json").out, nullptr, false);
  ASSERT_EQ(workers["workers"].size(), 1u) << workers.dump();
  EXPECT_EQ(workers["workers"][0]["capabilities"]["backend"], "cpu") << workers.dump();
  // JSON output: 64-bit integers are numbers, enums the job spec's spellings.
  EXPECT_TRUE(workers["workers"][0]["capabilities"]["memoryBytes"].is_number_unsigned())
      << workers.dump();
  const std::string state = workers["workers"][0]["state"];
  EXPECT_TRUE(state == "idle" || state == "busy") << workers.dump();
  // A worker offers every method, each in its one spelling.
  std::vector<std::string> offered, known;
  for (const json& m : workers["workers"][0]["capabilities"]["methods"]) offered.push_back(m);
  for (quant::Method m : quant::kAllMethods) known.push_back(quant::MethodName(m));
  EXPECT_EQ(offered, known) << workers.dump();
  EXPECT_EQ(Embedded(1), ReadTree(dir_ / "out"));
}

TEST_F(ServiceCliTest, ExitCodesAreTheDocumentedOnes) {
  StartCoordinator();
  const std::string id = Submit();  // no workers: it stays running
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Glvq("status " + id).exit_code, 0);
  EXPECT_EQ(Glvq("cancel " + id).exit_code, 0);
  EXPECT_EQ(Glvq("watch " + id).exit_code, 3);
  EXPECT_EQ(Glvq("status " + id).exit_code, 3);
  EXPECT_EQ(Glvq("cancel no-such-job").exit_code, 1);
  EXPECT_EQ(RunCommand(Bin("glvq") + " submit").exit_code, 2);
  const auto refused = RunCommand(Bin("glvq") + " status x --coordinator 127.0.0.1:1 --timeout 2");
  EXPECT_EQ(refused.exit_code, 4);
  EXPECT_NE(refused.err.find("glvq: hint: no coordinator answers at 127.0.0.1:1: start one "
                             "(glvq-coordinator --listen 127.0.0.1:1"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("$GLVQ_COORDINATOR"), std::string::npos);
  WriteFile(dir_ / "bad.yaml", "apiVersion: glvq.io/v1\nkind: Nope\n");
  EXPECT_EQ(Glvq("submit " + (dir_ / "bad.yaml").string()).exit_code, 1);
  EXPECT_EQ(RunCommand("GLVQ_COORDINATOR=" + Address() + " " + Bin("glvq") + " list").exit_code,
            0);
}

}  // namespace
}  // namespace glvq::testing
