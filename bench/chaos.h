// `glvq-bench chaos` (chaos_bench.cc): one job over real glvq-worker
// processes while workers are SIGKILLed and replaced every few seconds and
// the coordinator is SIGKILLed and restarted once; the output must be
// byte-identical to a clean run's (chaos_runs.cc).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace glvq::bench {

struct ChaosOptions {
  std::filesystem::path bin_dir;   // glvq-coordinator, glvq-worker
  std::filesystem::path work_dir;  // model, reference, state dirs, logs
  int workers = 8;
  double kill_every_seconds = 2;
  uint64_t seed = 1;  // trial t kills with Rng(DeriveSeed(seed, t))
  // The example model (RTN 4 bit, group 128): one task per linear weight.
  int layers = 8;
  int hidden = 256;
  // Workers pause this long before each task, holding its lease, so that
  // kills land mid-task.
  int task_delay_ms = 2000;
  // Coordinator --lease-seconds: how soon a killed worker's task is re-issued.
  double lease_seconds = 2;
};

// The clean run: the job with 2 workers, nothing killed. Its output
// directory, the reference every trial is compared with.
absl::StatusOr<std::filesystem::path> RunChaosReference(const ChaosOptions& o);

struct ChaosTrial {
  int trial = 0;
  int tasks = 0;
  int workers_killed = 0;
  int coordinator_restarts = 0;
  // Progress.task_retries summed over the coordinator's lives (its count
  // starts again after a restart): leases that expired or failed.
  int retries = 0;
  double seconds = 0;  // submission -> SUCCEEDED
  bool succeeded = false;
  std::string error;  // why the job did not succeed
  bool identical = false;
  std::string first_difference;  // relative path, empty when identical
};

// One trial against `reference`. An error only when the bench itself could
// not run (processes, files); a failed job or differing output is reported
// in the row.
absl::StatusOr<ChaosTrial> RunChaosTrial(const ChaosOptions& o, int trial,
                                         const std::filesystem::path& reference);

}  // namespace glvq::bench
