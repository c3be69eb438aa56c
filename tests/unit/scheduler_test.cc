// The Scheduler on its own (no gRPC): fair sharing of workers across
// concurrent jobs, workers whose tasks keep failing set aside, and commits
// (concurrent duplicate uploads, a journal that cannot flush), on the
// tiny model of tests/support/tiny_model.h (three projections: three tasks
// per job, in plan order down_proj, up_proj, q_proj).
#include "coordinator/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/result_codec.h"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_model.h"
#include "worker/engine/quantizer.h"
#include "worker/service/task_inputs.h"

namespace glvq::coordinator {
namespace {

namespace fs = std::filesystem;
using glvq::testing::ScratchDir;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { glvq::testing::WriteTinyModel(dir_ / "model"); }

  void Start(SetAsidePolicy set_aside = {}, JournalOptions journal = {}) {
    SchedulerOptions options;
    options.state_dir = dir_ / "state";
    options.set_aside = set_aside;
    options.journal = std::move(journal);
    auto s = Scheduler::Create(options);
    ASSERT_TRUE(s.ok()) << s.status();
    scheduler_ = *std::move(s);
  }

  // Submits a 3-task job named `name`; its id.
  std::string Submit(const std::string& name) {
    v1::SubmitJobRequest request;
    *request.mutable_job() = glvq::testing::Stories260KJob(dir_ / "model", dir_ / name);
    request.mutable_job()->mutable_metadata()->set_name(name);
    auto response = scheduler_->Submit(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->job().id() : "";
  }

  std::string Register() {
    v1::RegisterWorkerRequest request;
    request.set_hostname("test");
    request.mutable_capabilities()->set_backend(v1::BACKEND_CPU);
    return scheduler_->RegisterWorker(request).worker_id();
  }

  // One pull that does not wait; the lease, or nullopt.
  std::optional<v1::PullTaskResponse> Pull(const std::string& worker_id) {
    v1::PullTaskRequest request;
    request.set_worker_id(worker_id);
    auto response = scheduler_->PullTask(request, [] { return true; });
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok() || !response->has_task()) return std::nullopt;
    return *response;
  }

  void Fail(const v1::PullTaskResponse& leased,
            absl::StatusCode code = absl::StatusCode::kInternal) {
    v1::ReportTaskFailureRequest request;
    request.set_worker_id(leased.lease().worker_id());
    request.set_lease_id(leased.lease().lease_id());
    request.set_task_id(leased.task().id());
    request.set_code(static_cast<int>(code));
    request.set_message("engine crashed");
    ASSERT_TRUE(scheduler_->ReportFailure(request).ok());
  }

  // Quantizes the leased task as a worker would.
  static rpc::EncodedResult Compute(const v1::PullTaskResponse& leased) {
    const v1::Task& task = leased.task();
    auto data = worker::ReadTaskInputs(task);
    EXPECT_TRUE(data.ok()) << data.status();
    auto config = jobspec::ToQuantizerConfig(task.quantizer());
    EXPECT_TRUE(config.ok()) << config.status();
    auto quantizer = engine::MakeQuantizer(*config);
    EXPECT_TRUE(quantizer.ok()) << quantizer.status();
    auto result = engine::QuantizeRange(**quantizer, engine::InputOf(*data, task.tensor()));
    EXPECT_TRUE(result.ok()) << result.status();
    rpc::EncodedResult encoded = rpc::EncodeResult(task, *result);
    encoded.header.set_lease_id(leased.lease().lease_id());
    encoded.header.set_worker_id(leased.lease().worker_id());
    return encoded;
  }

  // ... and commits the result.
  void Commit(const v1::PullTaskResponse& leased) {
    const rpc::EncodedResult encoded = Compute(leased);
    auto outcome = scheduler_->CommitResult(encoded.header, encoded.payload);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, v1::UploadResultResponse::OUTCOME_COMMITTED);
  }

  v1::WorkerInfo Worker(const std::string& id) {
    const v1::ListWorkersResponse workers = scheduler_->ListWorkers();
    for (const v1::WorkerInfo& w : workers.workers()) {
      if (w.worker_id() == id) return w;
    }
    ADD_FAILURE() << "no worker " << id;
    return {};
  }

  v1::JobState State(const std::string& job_id) {
    auto job = scheduler_->GetJob(job_id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->status().state() : v1::JOB_STATE_UNSPECIFIED;
  }

  ScratchDir dir_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, ConcurrentJobsShareTheWorkersInsteadOfFirstComeFirstServed) {
  Start();
  const std::string a = Submit("job-a");
  const std::string b = Submit("job-b");
  std::vector<std::string> leased_from;
  auto pull_new = [&] {
    auto leased = Pull(Register());
    ASSERT_TRUE(leased.has_value());
    leased_from.push_back(leased->task().job_id());
  };
  for (int i = 0; i < 4; ++i) pull_new();
  // Submitted last, holding fewer leases: the next workers go to it until
  // it holds as many as the others.
  const std::string c = Submit("job-c");
  for (int i = 0; i < 4; ++i) pull_new();
  // Job order alone would give a, a, a, b, b, b, c, c; fewest leases first
  // (ties: least recently leased) alternates.
  EXPECT_EQ(leased_from, (std::vector<std::string>{a, b, a, b, c, c, a, b}));
}

TEST_F(SchedulerTest, AWorkerWhoseTasksKeepFailingIsSetAside) {
  Start({.after_failures = 3, .duration = absl::Hours(1)});
  const std::string job = Submit("job-a");
  const std::string bad = Register();
  const std::string good = Register();
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto leased = Pull(bad);
    ASSERT_TRUE(leased.has_value());
    EXPECT_EQ(leased->task().attempt(), attempt) << "the same task comes back";
    EXPECT_EQ(Worker(bad).state(), v1::WORKER_STATE_BUSY);
    Fail(*leased);
  }
  const v1::WorkerInfo aside = Worker(bad);
  EXPECT_EQ(aside.state(), v1::WORKER_STATE_SET_ASIDE);
  EXPECT_EQ(aside.consecutive_failures(), 3u);
  EXPECT_EQ(aside.tasks_failed(), 3u);
  EXPECT_GT(rpc::FromProto(aside.set_aside_until()), absl::Now() + absl::Minutes(59));
  EXPECT_FALSE(Pull(bad).has_value()) << "no lease while set aside";

  // The task is not lost: a healthy worker takes its 4th attempt (the job
  // fails only after max_attempts = 4 failures).
  auto leased = Pull(good);
  ASSERT_TRUE(leased.has_value());
  EXPECT_EQ(leased->task().attempt(), 4u);
  Commit(*leased);
  EXPECT_EQ(State(job), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(Worker(good).consecutive_failures(), 0u);
}

TEST_F(SchedulerTest, ASetAsideWorkerComesBackOnProbationAndASuccessClearsIt) {
  Start({.after_failures = 2, .duration = absl::Milliseconds(1)});
  Submit("job-a");
  const std::string w = Register();
  for (int i = 0; i < 2; ++i) {
    auto leased = Pull(w);
    ASSERT_TRUE(leased.has_value());
    Fail(*leased);
  }
  EXPECT_EQ(Worker(w).state(), v1::WORKER_STATE_SET_ASIDE);
  absl::SleepFor(absl::Milliseconds(20));  // the time aside is over

  // Back, but its count stays: one more failure sets it aside again.
  auto leased = Pull(w);
  ASSERT_TRUE(leased.has_value());
  EXPECT_EQ(Worker(w).state(), v1::WORKER_STATE_BUSY);
  Fail(*leased);
  EXPECT_EQ(Worker(w).state(), v1::WORKER_STATE_SET_ASIDE);
  EXPECT_EQ(Worker(w).consecutive_failures(), 3u);
  absl::SleepFor(absl::Milliseconds(20));

  // A committed result clears the count.
  leased = Pull(w);
  ASSERT_TRUE(leased.has_value());
  Commit(*leased);
  const v1::WorkerInfo info = Worker(w);
  EXPECT_EQ(info.state(), v1::WORKER_STATE_IDLE);
  EXPECT_EQ(info.consecutive_failures(), 0u);
  EXPECT_FALSE(info.has_set_aside_until());
}

TEST_F(SchedulerTest, BadInputAndDeregistrationDoNotCountAgainstAWorker) {
  Start({.after_failures = 1, .duration = absl::Hours(1)});
  const std::string job = Submit("job-a");
  const std::string leaving = Register();
  ASSERT_TRUE(Pull(leaving).has_value());
  ASSERT_TRUE(scheduler_->DeregisterWorker(leaving).ok());  // gives its task back

  const std::string w = Register();
  auto leased = Pull(w);
  ASSERT_TRUE(leased.has_value());
  EXPECT_EQ(leased->task().attempt(), 2u);
  // Bad input fails the job at once; it says nothing about the worker.
  Fail(*leased, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(State(job), v1::JOB_STATE_FAILED);
  EXPECT_EQ(Worker(w).state(), v1::WORKER_STATE_IDLE);
  EXPECT_EQ(Worker(w).consecutive_failures(), 0u);
}

TEST_F(SchedulerTest, OnlyTheHolderRenewsFetchesForOrGivesBackALease) {
  Start();
  const std::string job = Submit("job-a");
  const std::string holder = Register(), other = Register();
  auto leased = Pull(holder);
  ASSERT_TRUE(leased.has_value());
  const std::string lease_id = leased->lease().lease_id();
  // Ids carry a random tail: nobody derives them from job, task and attempt.
  EXPECT_THAT(lease_id, ::testing::MatchesRegex(".*/[0-9]+/[0-9a-f]{16}"));
  EXPECT_THAT(holder, ::testing::MatchesRegex("w-[0-9]+-[0-9a-f]{8}"));

  v1::HeartbeatRequest hb;
  hb.set_worker_id(other);
  hb.add_leases()->set_lease_id(lease_id);
  auto renewed = scheduler_->Heartbeat(hb);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->renewed_size(), 0);
  ASSERT_EQ(renewed->revoked_lease_ids_size(), 1);  // not the caller's to renew

  v1::FetchTensorRequest fetch;
  fetch.set_worker_id(other);
  fetch.set_lease_id(lease_id);
  fetch.set_task_id(leased->task().id());
  EXPECT_EQ(scheduler_->TaskForFetch(fetch).status().code(), absl::StatusCode::kPermissionDenied);

  v1::ReportTaskFailureRequest fail;
  fail.set_worker_id(other);
  fail.set_lease_id(lease_id);
  fail.set_task_id(leased->task().id());
  fail.set_code(static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(scheduler_->ReportFailure(fail).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(State(job), v1::JOB_STATE_RUNNING);  // the forged failure did not fail the job

  hb.set_worker_id(holder);  // the holder itself still renews
  renewed = scheduler_->Heartbeat(hb);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->renewed_size(), 1);
  Commit(*leased);
}

TEST_F(SchedulerTest, ASpecWithQuantizerFieldsLeftOutIsCompletedAtSubmission) {
  // What the Python client sends: {method: glvq, bits: 2} and nothing else.
  Start();
  v1::SubmitJobRequest request;
  *request.mutable_job() = glvq::testing::Stories260KJob(dir_ / "model", dir_ / "out");
  v1::QuantizerSpec minimal;
  minimal.set_method(v1::METHOD_GLVQ);
  minimal.set_bits(2);
  *request.mutable_job()->mutable_spec()->mutable_quantizer() = minimal;
  auto response = scheduler_->Submit(request);
  ASSERT_TRUE(response.ok()) << response.status();
  const v1::QuantizerSpec& stored = response->job().definition().spec().quantizer();
  EXPECT_EQ(stored.group_size(), 128);
  EXPECT_EQ(stored.dim(), 8);
  auto leased = Pull(Register());
  ASSERT_TRUE(leased.has_value());
  EXPECT_EQ(leased->task().quantizer().group_size(), 128);
  auto config = jobspec::ToQuantizerConfig(leased->task().quantizer());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(quant::ValidateConfig(*config).ok());
}

TEST_F(SchedulerTest, ASpecWithFinetuneIsRefused) {
  // Fine-tuning runs in `glvq quantize` after the job; a coordinator would
  // silently skip it.
  Start();
  v1::SubmitJobRequest request;
  *request.mutable_job() = glvq::testing::Stories260KJob(dir_ / "model", dir_ / "out");
  request.mutable_job()->mutable_spec()->mutable_finetune()->set_tokens((dir_ / "t").string());
  auto response = scheduler_->Submit(request);
  ASSERT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition) << response.status();
  EXPECT_NE(response.status().message().find("glvq finetune"), std::string::npos);
}

// The journal's commit records, by task.
std::map<std::string, int> JournaledCommits(const fs::path& state_dir) {
  std::vector<v1::JournalRecord> records;
  EXPECT_TRUE(Journal::Open(state_dir / "journal", &records).ok());
  std::map<std::string, int> commits;
  for (const v1::JournalRecord& r : records) {
    if (r.has_committed()) ++commits[r.committed().task_id()];
  }
  return commits;
}

TEST_F(SchedulerTest, ConcurrentUploadsOfOneResultStageAndJournalItOnce) {
  Start();
  Submit("job-a");
  auto leased = Pull(Register());
  ASSERT_TRUE(leased.has_value());
  const rpc::EncodedResult result = Compute(*leased);
  std::vector<absl::StatusOr<v1::UploadResultResponse::Outcome>> outcomes(4);
  std::vector<std::thread> uploads;
  for (auto& outcome : outcomes) {
    uploads.emplace_back(
        [&] { outcome = scheduler_->CommitResult(result.header, result.payload); });
  }
  for (std::thread& t : uploads) t.join();
  int committed = 0;
  for (const auto& outcome : outcomes) {
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    committed += *outcome == v1::UploadResultResponse::OUTCOME_COMMITTED;
  }
  EXPECT_EQ(committed, 1) << "the others are told it was committed already";
  scheduler_.reset();
  EXPECT_EQ(JournaledCommits(dir_ / "state"),
            (std::map<std::string, int>{{leased->task().id(), 1}}));
}

TEST_F(SchedulerTest, AFailedJournalFlushFailsTheUploadAndNothingReportsTheCommit) {
  std::atomic<bool> disk_broken = false;
  JournalOptions journal;
  journal.sync = [&](int fd) {
    if (!disk_broken) return ::fdatasync(fd);
    errno = EIO;
    return -1;
  };
  Start({}, journal);
  const std::string job = Submit("job-a");
  auto leased = Pull(Register());
  ASSERT_TRUE(leased.has_value());
  disk_broken = true;
  const rpc::EncodedResult result = Compute(*leased);
  auto outcome = scheduler_->CommitResult(result.header, result.payload);
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(outcome.status().message()),
              ::testing::HasSubstr("cannot flush records up to #2: Input/output error"));
  // The commit is in memory but not on disk: no call reports it.
  EXPECT_EQ(scheduler_->GetJob(job).status().code(), absl::StatusCode::kInternal);
  outcome = scheduler_->CommitResult(result.header, result.payload);
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kInternal);
  // A restart recovers from what is on disk.
  scheduler_.reset();
  Start();
  EXPECT_EQ(State(job), v1::JOB_STATE_RUNNING);
}

}  // namespace
}  // namespace glvq::coordinator
