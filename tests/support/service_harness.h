// Test harness for the service: a coordinator serving on 127.0.0.1 (a free
// port), jobs on the stories260K fixture, worker threads, and a "raw"
// worker that drives WorkerService by hand (to corrupt chunks, repeat
// uploads, or vanish with a lease).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/rpc/result_codec.h"
#include "coordinator/server.h"
#include "glvq/v1/services.grpc.pb.h"
#include "worker/service/worker.h"

namespace glvq::testing {

// A job quantizing stories260K into `out` (4-bit rtn in groups of 16: fast,
// with column groups to split).
v1::QuantizationJob Stories260KJob(const std::filesystem::path& model,
                                   const std::filesystem::path& out,
                                   uint64_t max_task_memory_bytes = 0);

// Writes `job` as a YAML job spec file.
void WriteJobYaml(const v1::QuantizationJob& job, const std::filesystem::path& path);

class ServiceHarness {
 public:
  explicit ServiceHarness(const std::filesystem::path& state_dir,
                          absl::Duration lease = absl::Seconds(30), uint32_t max_attempts = 4);
  ~ServiceHarness();

  coordinator::CoordinatorServer& server() { return *server_; }
  std::string address() const;
  v1::JobService::Stub& jobs() { return *jobs_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

  // Submits; the job's id, or the error.
  absl::StatusOr<std::string> Submit(const v1::QuantizationJob& job);
  absl::StatusOr<v1::Job> Get(const std::string& id);
  // Polls until the job ends or `timeout` passes; returns its last state.
  v1::Job WaitDone(const std::string& id, absl::Duration timeout = absl::Seconds(60));
  // Starts a worker thread (stopped and joined by StopWorkers / the destructor).
  void StartWorker(worker::WorkerOptions options = {});
  void StopWorkers();
  // Stops the coordinator (workers first); the state dir stays.
  void Shutdown();

 private:
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::vector<std::unique_ptr<worker::Worker>> workers_;
  std::vector<std::thread> threads_;
};

// A worker driven step by step through the raw RPCs.
class RawWorker {
 public:
  explicit RawWorker(std::shared_ptr<grpc::Channel> channel);
  const std::string& id() const { return id_; }
  // Pulls one task (waiting up to `wait`); nullopt if none.
  std::optional<v1::PullTaskResponse> Pull(absl::Duration wait = absl::Seconds(2));
  // Quantizes the task as a worker would (inputs read from the files).
  rpc::EncodedResult Compute(const v1::PullTaskResponse& leased);
  // Uploads in chunks of `chunk_bytes`; with `corrupt`, the second chunk's
  // CRC32C is wrong. Returns the status and the outcome.
  grpc::Status Upload(const rpc::EncodedResult& result, v1::UploadResultResponse* response,
                      bool corrupt = false, size_t chunk_bytes = 1000);
  grpc::Status ReportFailure(const v1::PullTaskResponse& leased, absl::StatusCode code,
                             const std::string& message);
  v1::WorkerService::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::string id_;
};

// Every file under `dir`, relative path -> bytes.
std::map<std::string, std::string> ReadTree(const std::filesystem::path& dir);

}  // namespace glvq::testing
