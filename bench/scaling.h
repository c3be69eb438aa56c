// `glvq-bench scaling` (scaling_bench.cc): the three measurements of the
// distributed service, each on real processes over loopback gRPC
// (scaling_runs.cc). Every figure is measured; nothing is modelled.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor/dtype.h"

namespace glvq::bench {

struct ScalingOptions {
  std::filesystem::path bin_dir;   // glvq-coordinator, glvq-worker
  std::filesystem::path work_dir;  // models, state dirs, logs
  // (a) CPU engine: workers (each --threads 1) on an example model.
  std::vector<int> cpu_workers = {1, 2};
  int cpu_layers = 8;
  int cpu_hidden = 512;
  int cpu_repeats = 2;  // jobs per worker count; the fastest counts
  // (b) coordinator capacity: bench-engine workers, `rounds` tasks each.
  std::vector<int> bench_workers = {1, 8, 32, 64};
  double task_seconds = 1;
  int rounds = 4;
  // (c) streaming: a rows × cols BF16 weight, RTN 8 bit (1 byte a weight).
  int64_t stream_rows = 4096;
  int64_t stream_cols = 4096;
  int stream_repeats = 5;
};

// (a) One job per worker count.
struct CpuRow {
  int workers = 0;
  int tasks = 0;
  uint64_t weights = 0;
  double seconds_committed = 0;  // submission -> every task committed
  double seconds_done = 0;       // ... -> output written and verified
  double mweights_per_s = 0;     // weights / seconds_committed
  double speedup = 0;            // over the first row
};

// (b) One job per worker count, rounds × workers tasks of task_seconds.
struct CapacityRow {
  int workers = 0;
  int tasks = 0;
  double seconds = 0;        // submission -> SUCCEEDED
  double ideal_seconds = 0;  // rounds × task_seconds
  double tasks_per_s = 0;
  double grant_p50_ms = 0;  // PullTask round trip of the pulls that got a lease
  double grant_p99_ms = 0;
  double upload_p50_ms = 0;  // UploadResult round trip (checked, stored, journaled)
  double upload_p99_ms = 0;
  // Mean time a worker waits for the coordinator per task (grant + upload),
  // as a share of the task time.
  double wait_share = 0;
  double coordinator_cpu_s = 0;  // over the job
  double cpu_ms_per_task = 0;
  double cpu_share = 0;  // coordinator CPU / job wall time
};

// (c) One row per kind of stream.
struct StreamRow {
  std::string what;    // "fetch", "upload", "upload+commit"
  uint64_t bytes = 0;  // per stream
  int streams = 0;
  double median_s = 0;
  double mb_per_s = 0;  // bytes / median_s / 1e6
};

// `count` LLM-like rows × cols weights named like MLP projections, in
// `dtype`: a model of `count` one-task tensors (also `glvq-bench load`'s).
absl::Status WriteLinearModel(const std::filesystem::path& dir, int count, int64_t rows,
                              int64_t cols, DType dtype);
// The q-quantile (0..1) of `v` (nearest rank); 0 for an empty `v`.
double Quantile(std::vector<double> v, double q);

absl::StatusOr<std::vector<CpuRow>> RunCpuScaling(const ScalingOptions& o);
absl::StatusOr<std::vector<CapacityRow>> RunCoordinatorCapacity(const ScalingOptions& o);
absl::StatusOr<std::vector<StreamRow>> RunStreaming(const ScalingOptions& o);

}  // namespace glvq::bench
