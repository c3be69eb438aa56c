// The service as `glvq-bench scaling` runs it: a glvq-coordinator process
// on 127.0.0.1 and glvq-worker processes, started from the bench's own bin
// directory, and the JobService calls the benchmark makes.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/process/child_process.h"
#include "glvq/v1/services.grpc.pb.h"
#include "common/quant/config.h"

namespace glvq::bench {

// The directory holding the running executable (and its sibling binaries).
std::filesystem::path OwnBinDir();

// A CPU-backend job named `name` quantizing the model at `model` (the
// default tensor patterns) into the new directory `out`.
v1::QuantizationJob JobFor(const std::string& name, const std::filesystem::path& model,
                           const std::filesystem::path& out,
                           const quant::QuantizerConfig& quantizer);

// When a job reached its milestones, seconds after its submission (client clock).
struct JobTimes {
  double all_committed = 0;  // state FINALIZING: every task committed
  double done = 0;           // SUCCEEDED: the output written and verified
};

class BenchService {
 public:
  // Starts glvq-coordinator on a free port of 127.0.0.1, its state and logs
  // under `dir` (created), with `coordinator_args` added to its command
  // line, and waits until it serves.
  static absl::StatusOr<std::unique_ptr<BenchService>> Start(
      const std::filesystem::path& bin_dir, const std::filesystem::path& dir,
      const std::vector<std::string>& coordinator_args = {});
  // Stops the workers, then the coordinator (SIGTERM, then SIGKILL).
  ~BenchService();

  const std::string& address() const { return address_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  process::ChildProcess& coordinator() { return *coordinator_; }

  // Starts `n` glvq-worker processes with `extra` arguments; "{i}" in an
  // argument becomes the worker's index. Waits until all n registered.
  absl::Status StartWorkers(int n, const std::vector<std::string>& extra);
  // SIGTERM to every worker (they drain and exit); waits for them.
  absl::Status StopWorkers();
  // SIGKILLs worker `index` (0-based, in start order; a replacement takes
  // its index) and starts a replacement with the
  // same arguments ("{i}": a new index); does not wait for it to register.
  absl::Status ReplaceWorker(int index);
  // SIGKILLs the coordinator and starts it again on the same port and state
  // directory (it resumes from its journal); waits until it serves.
  absl::Status RestartCoordinator();

  // The job as submitted (its id, plan).
  absl::StatusOr<v1::Job> Submit(const v1::QuantizationJob& job);
  // Follows the job (WatchJob) until it ends; SUCCEEDED or an error naming
  // its state and message. `submitted`: when Submit was called.
  absl::StatusOr<JobTimes> Follow(const std::string& job_id, absl::Time submitted);
  // GetJob with a short deadline (fails while the coordinator is down).
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);

 private:
  BenchService() = default;
  // Starts the coordinator listening on `listen`; waits for its port file.
  absl::Status StartCoordinator(const std::string& listen);
  absl::Status StartWorker(int index);

  std::filesystem::path bin_dir_, dir_;
  std::vector<std::string> coordinator_args_, worker_args_;
  int workers_started_ = 0;  // "{i}" of the next worker
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<process::ChildProcess> coordinator_;
  std::vector<std::unique_ptr<process::ChildProcess>> workers_;
};

}  // namespace glvq::bench
