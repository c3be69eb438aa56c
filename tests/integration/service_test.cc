// The coordinator and workers as a service, in one test process but over
// real gRPC on 127.0.0.1: result intake (checksums, idempotent uploads),
// leases and retries, cancel, concurrent jobs, FetchTensor, bad specs,
// resuming from the journal and the staged results after a restart, and
// staged results found damaged at finalisation.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <utility>

#include "grpcpp/generic/generic_stub.h"

#include "absl/time/clock.h"
#include "common/base/file_util.h"
#include "common/rpc/grpc_util.h"
#include "common/safetensors/reader.h"
#include "common/safetensors/writer.h"
#include "coordinator/journal.h"
#include "coordinator/worker_service.h"
#include "tests/support/service_harness.h"
#include "tests/support/test_support.h"
#include "worker/engine/group_range.h"

namespace glvq::testing {
namespace {

namespace fs = std::filesystem;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = Stories260KDir();
    if (!fs::exists(model_ / "model.safetensors")) GTEST_SKIP() << "no stories260K fixture";
  }

  // The output of `job` run by one worker on a fresh coordinator.
  std::map<std::string, std::string> Reference(uint64_t max_task_memory = 0) {
    ScratchDir dir;
    ServiceHarness h(dir / "state");
    h.StartWorker();
    auto id = h.Submit(Stories260KJob(model_, dir / "out", max_task_memory));
    EXPECT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(h.WaitDone(*id).status().state(), v1::JOB_STATE_SUCCEEDED);
    return ReadTree(dir / "out");
  }

  // Submits the fixture job to `h` (its id into *id), leases the first
  // task with `raw` and computes that task's result into *result. Call it
  // under ASSERT_NO_FATAL_FAILURE.
  void SubmitAndComputeFirstTask(ServiceHarness& h, RawWorker& raw, std::string* id,
                                 rpc::EncodedResult* result) {
    auto submitted = h.Submit(Stories260KJob(model_, dir_ / "out"));
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    *id = *submitted;
    auto leased = raw.Pull();
    ASSERT_TRUE(leased.has_value());
    *result = raw.Compute(*leased);
  }

  fs::path model_;
  ScratchDir dir_;
};

// Identity and last change of a file: equal only if it was not rewritten.
std::pair<ino_t, int64_t> FileStamp(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return {st.st_ino, int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// The staged results of a job, file name -> stamp.
std::map<std::string, std::pair<ino_t, int64_t>> StagedResults(const fs::path& state_dir,
                                                               const std::string& job_id) {
  std::map<std::string, std::pair<ino_t, int64_t>> out;
  if (!fs::exists(state_dir / "results" / job_id)) return out;
  for (const auto& e : fs::directory_iterator(state_dir / "results" / job_id)) {
    out[e.path().filename().string()] = FileStamp(e.path());
  }
  return out;
}

// Waits (up to 10 s) until the job's staged results are gone.
bool StagedResultsRemoved(const fs::path& state_dir, const std::string& job_id) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (fs::exists(state_dir / "results" / job_id)) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

TEST_F(ServiceTest, WorkersCompleteAJobWhoseOutputDoesNotDependOnTheirNumber) {
  const auto one = Reference(100 << 10);
  ServiceHarness h(dir_ / "state");
  for (int i = 0; i < 3; ++i) h.StartWorker();
  auto id = h.Submit(Stories260KJob(model_, dir_ / "out", 100 << 10));
  ASSERT_TRUE(id.ok()) << id.status();
  const v1::Job job = h.WaitDone(*id);
  ASSERT_EQ(job.status().state(), v1::JOB_STATE_SUCCEEDED) << job.status().error_message();
  EXPECT_GT(job.status().plan().tasks(), 35u);  // tensors were split
  EXPECT_EQ(job.status().progress().tasks_done(), job.status().plan().tasks());
  EXPECT_EQ(ReadTree(dir_ / "out"), one);
  EXPECT_GT(job.status().progress().quality().mean_sqnr_db(), 15);
}

TEST_F(ServiceTest, CorruptChunkIsDataLossAndDuplicateUploadsAreIdempotent) {
  ServiceHarness h(dir_ / "state");
  RawWorker raw(h.channel());
  std::string id;
  rpc::EncodedResult result;
  ASSERT_NO_FATAL_FAILURE(SubmitAndComputeFirstTask(h, raw, &id, &result));
  ASSERT_GT(result.payload.size(), 2000u);  // at least three chunks

  v1::UploadResultResponse response;
  grpc::Status s = raw.Upload(result, &response, /*corrupt=*/true);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_EQ(h.Get(id)->status().progress().tasks_done(), 0u);

  s = raw.Upload(result, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.outcome(), v1::UploadResultResponse::OUTCOME_COMMITTED);
  // A duplicate upload changes nothing: no staged file rewritten, no record.
  const auto staged = StagedResults(dir_ / "state", id);
  ASSERT_EQ(staged.size(), 1u);
  const uint64_t journal_bytes = fs::file_size(dir_ / "state" / "journal");
  s = raw.Upload(result, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.outcome(), v1::UploadResultResponse::OUTCOME_ALREADY_COMMITTED);
  EXPECT_EQ(h.Get(id)->status().progress().tasks_done(), 1u);
  EXPECT_EQ(StagedResults(dir_ / "state", id), staged);
  EXPECT_EQ(fs::file_size(dir_ / "state" / "journal"), journal_bytes);

  // Different bytes for a committed task: a determinism violation.
  rpc::EncodedResult other = result;
  other.header.set_payload_crc32c(other.header.payload_crc32c() ^ 1);
  s = raw.Upload(other, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();

  // A payload that disagrees with its header is DATA_LOSS too.
  auto next = raw.Pull();
  ASSERT_TRUE(next.has_value());
  rpc::EncodedResult bad = raw.Compute(*next);
  bad.payload[0] ^= 1;
  s = raw.Upload(bad, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  // As a worker does once its uploads keep failing: the task is re-leased.
  ASSERT_TRUE(raw.ReportFailure(*next, absl::StatusCode::kDataLoss, "upload failed").ok());

  h.StartWorker();  // finishes the job, including the task whose upload failed
  EXPECT_EQ(h.WaitDone(id).status().state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(ServiceTest, AnExpiredLeaseIsReissuedAndTheJobCompletes) {
  ServiceHarness h(dir_ / "state", absl::Milliseconds(400));
  auto id = h.Submit(Stories260KJob(model_, dir_ / "out"));
  ASSERT_TRUE(id.ok()) << id.status();
  RawWorker vanished(h.channel());
  ASSERT_TRUE(vanished.Pull().has_value());  // and never heartbeats
  h.StartWorker();
  const v1::Job job = h.WaitDone(*id);
  ASSERT_EQ(job.status().state(), v1::JOB_STATE_SUCCEEDED) << job.status().error_message();
  EXPECT_GE(job.status().progress().task_retries(), 1u);
}

TEST_F(ServiceTest, ATaskFailingTooOftenFailsTheJobWithTheReason) {
  ServiceHarness h(dir_ / "state", absl::Seconds(30), /*max_attempts=*/2);
  auto id = h.Submit(Stories260KJob(model_, dir_ / "out"));
  ASSERT_TRUE(id.ok()) << id.status();
  RawWorker raw(h.channel());
  for (int i = 0; i < 2; ++i) {
    auto leased = raw.Pull();
    ASSERT_TRUE(leased.has_value());
    EXPECT_EQ(leased->task().attempt(), static_cast<uint32_t>(i + 1));
    ASSERT_TRUE(raw.ReportFailure(*leased, absl::StatusCode::kInternal, "disk on fire").ok());
  }
  const v1::Job job = h.WaitDone(*id);
  EXPECT_EQ(job.status().state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(job.status().error_message().find("failed 2 times"), std::string::npos)
      << job.status().error_message();
  EXPECT_NE(job.status().error_message().find("disk on fire"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(ServiceTest, BadInputReportedByAWorkerFailsTheJobAtOnce) {
  ServiceHarness h(dir_ / "state");
  auto id = h.Submit(Stories260KJob(model_, dir_ / "out"));
  ASSERT_TRUE(id.ok());
  RawWorker raw(h.channel());
  auto leased = raw.Pull();
  ASSERT_TRUE(leased.has_value());
  ASSERT_TRUE(raw.ReportFailure(*leased, absl::StatusCode::kInvalidArgument, "NaN weights").ok());
  const v1::Job job = h.WaitDone(*id);
  EXPECT_EQ(job.status().state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.status().error_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
}

// The coordinator's counter of results it could not stage.
double StorageFailures(ServiceHarness& h) {
  for (const auto& family : h.server().scheduler().metrics().registry()->Collect()) {
    if (family.name == "glvq_coordinator_storage_failures_total") {
      return family.metric.at(0).counter.value;
    }
  }
  ADD_FAILURE() << "no glvq_coordinator_storage_failures_total";
  return -1;
}

// The job's retained message events (WatchJob from the first event, read
// until the stream has been quiet for a second).
std::vector<std::string> MessageEvents(ServiceHarness& h, const std::string& id) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(1));
  v1::WatchJobRequest request;
  request.set_job_id(id);
  request.set_after_sequence(1);
  auto reader = h.jobs().WatchJob(&context, request);
  std::vector<std::string> messages;
  v1::JobEvent event;
  while (reader->Read(&event)) {
    if (event.has_message()) messages.push_back(event.message());
  }
  (void)reader->Finish();
  return messages;
}

// A coordinator that cannot stage results (a full disk; here its results
// folder replaced by a file) takes the blame: the upload gets UNAVAILABLE,
// the job says why and keeps running, nothing counts against the worker,
// and the same result commits once storage is back.
TEST_F(ServiceTest, AStorageFailureIsTheCoordinatorsAndHealsWhenStorageReturns) {
  ServiceHarness h(dir_ / "state");
  RawWorker raw(h.channel());
  std::string id;
  rpc::EncodedResult result;
  ASSERT_NO_FATAL_FAILURE(SubmitAndComputeFirstTask(h, raw, &id, &result));
  const fs::path staging = dir_ / "state" / "results" / id;
  fs::remove_all(staging);
  WriteFile(staging, "a file where the coordinator stages the job's results");

  v1::UploadResultResponse response;
  for (int i = 0; i < 3; ++i) {
    const grpc::Status s = raw.Upload(result, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    EXPECT_NE(s.error_message().find("coordinator storage"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(StorageFailures(h), 3);
  auto job = h.Get(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->status().progress().task_retries(), 0u);
  std::vector<std::string> messages = MessageEvents(h, id);
  EXPECT_EQ(std::count_if(messages.begin(), messages.end(),
                          [](const std::string& m) {
                            return m.find("cannot stage results") != std::string::npos;
                          }),
            1)
      << "one event per streak";

  fs::remove(staging);
  const grpc::Status s = raw.Upload(result, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.outcome(), v1::UploadResultResponse::OUTCOME_COMMITTED);
  EXPECT_EQ(StorageFailures(h), 3) << "a successful upload is not counted";
  messages = MessageEvents(h, id);
  EXPECT_NE(std::find(messages.begin(), messages.end(), "the coordinator stages results again"),
            messages.end());
  EXPECT_TRUE(raw.Pull().has_value()) << "the worker still gets tasks";
}

// End to end with a real worker: it keeps its result while the coordinator
// cannot stage it, and the job finishes with the reference bytes once
// storage returns.
TEST_F(ServiceTest, AWorkerKeepsItsResultUntilTheCoordinatorCanStageIt) {
  const auto reference = Reference();
  ServiceHarness h(dir_ / "state");
  auto id = h.Submit(Stories260KJob(model_, dir_ / "out"));
  ASSERT_TRUE(id.ok()) << id.status();
  const fs::path staging = dir_ / "state" / "results" / *id;
  WriteFile(staging, "a file where the coordinator stages the job's results");
  h.StartWorker();
  absl::SleepFor(absl::Seconds(3));
  auto job = h.Get(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->status().progress().task_retries(), 0u);
  fs::remove(staging);
  EXPECT_EQ(h.WaitDone(*id).status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ReadTree(dir_ / "out"), reference);
}

TEST_F(ServiceTest, CancelEndsTheJobAndRevokesItsLeases) {
  ServiceHarness h(dir_ / "state");
  auto id = h.Submit(Stories260KJob(model_, dir_ / "out"));
  ASSERT_TRUE(id.ok());
  RawWorker raw(h.channel());
  auto leased = raw.Pull();
  ASSERT_TRUE(leased.has_value());

  auto cancel = [&] {
    grpc::ClientContext context;
    v1::CancelJobRequest request;
    request.set_job_id(*id);
    request.set_reason("test");
    v1::Job job;
    return std::make_pair(h.jobs().CancelJob(&context, request, &job), job);
  };
  auto [s, job] = cancel();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.status().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(cancel().first.ok());  // idempotent

  grpc::ClientContext context;
  v1::HeartbeatRequest hb;
  hb.set_worker_id(raw.id());
  hb.add_leases()->set_lease_id(leased->lease().lease_id());
  v1::HeartbeatResponse hr;
  ASSERT_TRUE(raw.stub().Heartbeat(&context, hb, &hr).ok());
  ASSERT_EQ(hr.revoked_lease_ids_size(), 1);
  v1::UploadResultResponse response;
  EXPECT_EQ(raw.Upload(raw.Compute(*leased), &response).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_FALSE(raw.Pull(absl::Milliseconds(200)).has_value());
  EXPECT_FALSE(fs::exists(dir_ / "out"));

  // A watcher of a cancelled job sees its end at once.
  grpc::ClientContext watch_context;
  v1::WatchJobRequest watch;
  watch.set_job_id(*id);
  auto reader = h.jobs().WatchJob(&watch_context, watch);
  v1::JobEvent e;
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_FALSE(reader->Read(&e));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(ServiceTest, TwoConcurrentJobsBothFinish) {
  ServiceHarness h(dir_ / "state");
  auto a = h.Submit(Stories260KJob(model_, dir_ / "a"));
  auto b = h.Submit(Stories260KJob(model_, dir_ / "b", 100 << 10));
  ASSERT_TRUE(a.ok() && b.ok());
  // The same output path as a running job is refused.
  EXPECT_EQ(h.Submit(Stories260KJob(model_, dir_ / "a")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  h.StartWorker();
  h.StartWorker();
  EXPECT_EQ(h.WaitDone(*a).status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(h.WaitDone(*b).status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ReadTree(dir_ / "a")["model.safetensors"], ReadTree(dir_ / "b")["model.safetensors"]);
}

TEST_F(ServiceTest, AWorkerWithoutFileAccessStreamsItsInputs) {
  const auto reference = Reference();
  ServiceHarness h(dir_ / "state");
  auto id = h.Submit(Stories260KJob(model_, dir_ / "out"));
  ASSERT_TRUE(id.ok());

  // FetchTensor gives exactly the task's columns, chunk by chunk.
  RawWorker raw(h.channel());
  auto leased = raw.Pull();
  ASSERT_TRUE(leased.has_value());
  grpc::ClientContext context;
  v1::FetchTensorRequest fetch;
  fetch.set_worker_id(raw.id());
  fetch.set_lease_id(leased->lease().lease_id());
  fetch.set_task_id(leased->task().id());
  fetch.set_what(v1::FetchTensorRequest::WHAT_WEIGHTS);
  auto reader = raw.stub().FetchTensor(&context, fetch);
  rpc::ChunkReceiver receiver;
  v1::FetchTensorResponse message;
  while (reader->Read(&message)) ASSERT_TRUE(receiver.Add(message.chunk()).ok());
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(receiver.data(), *coordinator::FetchTensorBytes(leased->task(),
                                                            v1::FetchTensorRequest::WHAT_WEIGHTS));
  EXPECT_EQ(receiver.data().size(), message.total_bytes());
  ASSERT_TRUE(raw.ReportFailure(*leased, absl::StatusCode::kUnavailable, "test: give back").ok());

  worker::WorkerOptions options;
  options.shared_paths.clear();  // --no-shared-fs
  h.StartWorker(options);
  ASSERT_EQ(h.WaitDone(*id).status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ReadTree(dir_ / "out"), reference);
}

TEST_F(ServiceTest, BadSpecsAreRejectedAndNothingIsWritten) {
  ServiceHarness h(dir_ / "state");
  v1::QuantizationJob job = Stories260KJob(model_, dir_ / "out");
  job.mutable_spec()->mutable_model()->set_path("relative/model");
  EXPECT_EQ(h.Submit(job).status().code(), absl::StatusCode::kInvalidArgument);
  job = Stories260KJob(dir_ / "no-such-model", dir_ / "out");
  EXPECT_EQ(h.Submit(job).status().code(), absl::StatusCode::kFailedPrecondition);
  job = Stories260KJob(model_, dir_ / "out");
  job.mutable_spec()->mutable_quantizer()->set_bits(9);
  EXPECT_EQ(h.Submit(job).status().code(), absl::StatusCode::kInvalidArgument);
  fs::create_directories(dir_ / "exists");
  EXPECT_EQ(h.Submit(Stories260KJob(model_, dir_ / "exists")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  job = Stories260KJob(model_, dir_ / "out");
  job.mutable_spec()->mutable_tensors()->add_include("no.such.tensor*");
  EXPECT_EQ(h.Submit(job).status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_FALSE(fs::exists(dir_ / "out"));
  grpc::ClientContext context;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(h.jobs().ListJobs(&context, v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

TEST_F(ServiceTest, TheStandardHealthServiceAnswersServing) {
  ServiceHarness h(dir_ / "state");
  grpc::GenericStub stub(h.channel());
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(10));
  grpc::Slice empty("", 0);  // HealthCheckRequest{service: ""} serializes to nothing
  const grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) { done.set_value(s); });
  const grpc::Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  EXPECT_EQ(bytes, std::string("\x08\x01"));  // status: SERVING
}

// How many commit records the journal holds per task.
std::map<std::string, int> CommitsPerTask(const fs::path& state_dir) {
  std::vector<v1::JournalRecord> records;
  EXPECT_TRUE(coordinator::Journal::Open(state_dir / "journal", &records).ok());
  std::map<std::string, int> commits;
  for (const auto& r : records) {
    if (r.has_committed()) ++commits[r.committed().task_id()];
  }
  return commits;
}

TEST_F(ServiceTest, ARestartedCoordinatorResumesWithoutRedoingCommittedTasks) {
  const auto reference = Reference();
  std::string id;
  std::map<std::string, std::pair<ino_t, int64_t>> staged;
  {
    ServiceHarness h(dir_ / "state");
    id = *h.Submit(Stories260KJob(model_, dir_ / "out"));
    RawWorker raw(h.channel());
    for (int i = 0; i < 5; ++i) {
      auto leased = raw.Pull();
      ASSERT_TRUE(leased.has_value());
      v1::UploadResultResponse response;
      ASSERT_TRUE(raw.Upload(raw.Compute(*leased), &response).ok());
    }
    ASSERT_TRUE(raw.Pull().has_value());  // in flight when the coordinator stops
    staged = StagedResults(dir_ / "state", id);
  }
  // The staged results of the committed tasks survive the restart as they
  // were, and the output is assembled from them.
  ASSERT_EQ(staged.size(), 5u);
  ServiceHarness h(dir_ / "state");
  EXPECT_EQ(h.Get(id)->status().progress().tasks_done(), 5u);
  EXPECT_EQ(StagedResults(dir_ / "state", id), staged);
  h.StartWorker();
  const v1::Job job = h.WaitDone(id);
  ASSERT_EQ(job.status().state(), v1::JOB_STATE_SUCCEEDED) << job.status().error_message();
  EXPECT_EQ(ReadTree(dir_ / "out"), reference);
  EXPECT_TRUE(StagedResultsRemoved(dir_ / "state", id));
  const auto commits = CommitsPerTask(dir_ / "state");
  EXPECT_EQ(commits.size(), job.status().plan().tasks());
  for (const auto& [task, n] : commits) EXPECT_EQ(n, 1) << task;
  // Finished jobs survive a restart too, with their figures.
  h.Shutdown();
  ServiceHarness again(dir_ / "state");
  const v1::Job later = *again.Get(id);
  EXPECT_EQ(later.status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(later.status().progress().tasks_done(), job.status().plan().tasks());
}

TEST_F(ServiceTest, ChangedInputsStopAResumeWithAClearReason) {
  fs::create_directories(dir_ / "model");
  fs::copy_file(model_ / "model.safetensors", dir_ / "model" / "model.safetensors");
  std::string id;
  {
    ServiceHarness h(dir_ / "state");
    id = *h.Submit(Stories260KJob(dir_ / "model", dir_ / "out"));
  }
  {
    // The same tensors with different metadata: still a valid model.
    auto model = SafetensorsModel::Open(dir_ / "model");
    ASSERT_TRUE(model.ok()) << model.status();
    std::vector<TensorToWrite> tensors;
    for (const std::string& name : model->tensor_names()) {
      const TensorView v = *model->Get(name);
      tensors.push_back({name, v.dtype, v.shape, v.data});
    }
    ASSERT_TRUE(WriteSafetensors(dir_ / "changed.safetensors", tensors, {{"note", "changed"}}).ok());
  }
  fs::rename(dir_ / "changed.safetensors", dir_ / "model" / "model.safetensors");
  ServiceHarness h(dir_ / "state");
  const v1::Job job = *h.Get(id);
  EXPECT_EQ(job.status().state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.status().error_code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_NE(job.status().error_message().find("changed size"), std::string::npos)
      << job.status().error_message();
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(ServiceTest, ADamagedStagedResultIsRedoneBeforeTheOutputIsWritten) {
  const auto reference = Reference();
  ServiceHarness h(dir_ / "state");
  const std::string id = *h.Submit(Stories260KJob(model_, dir_ / "out"));
  const uint32_t tasks = h.Get(id)->status().plan().tasks();
  RawWorker raw(h.channel());
  std::string victim;
  for (uint32_t i = 0; i < tasks; ++i) {
    auto leased = raw.Pull();
    ASSERT_TRUE(leased.has_value());
    if (i == 0) victim = leased->task().id();
    if (i + 1 == tasks) {
      // Before the last commit, which starts the finalisation: a bit flips
      // in the payload of the first staged result.
      const fs::path path = dir_ / "state" / "results" / id / (victim + ".result");
      std::string bytes = *ReadFileToString(path);
      bytes[bytes.size() - 3] ^= 0x04;
      WriteFile(path, bytes);
    }
    v1::UploadResultResponse response;
    ASSERT_TRUE(raw.Upload(raw.Compute(*leased), &response).ok());
    ASSERT_EQ(response.outcome(), v1::UploadResultResponse::OUTCOME_COMMITTED);
  }
  // The finalisation checks the staged results first and queues the task again.
  auto again = raw.Pull(absl::Seconds(10));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->task().id(), victim);
  EXPECT_EQ(again->task().attempt(), 2u);
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  v1::UploadResultResponse response;
  ASSERT_TRUE(raw.Upload(raw.Compute(*again), &response).ok());
  EXPECT_EQ(response.outcome(), v1::UploadResultResponse::OUTCOME_COMMITTED);

  const v1::Job job = h.WaitDone(id);
  ASSERT_EQ(job.status().state(), v1::JOB_STATE_SUCCEEDED) << job.status().error_message();
  EXPECT_EQ(ReadTree(dir_ / "out"), reference);
  EXPECT_EQ(job.status().progress().tasks_done(), tasks);
  EXPECT_EQ(job.status().progress().task_retries(), 1u);
  EXPECT_EQ(CommitsPerTask(dir_ / "state")[victim], 2);
}

}  // namespace
}  // namespace glvq::testing
