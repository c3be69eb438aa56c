// `glvq-bench scaling`: the distributed service measured on this machine,
// with real glvq-coordinator and glvq-worker processes on loopback:
//   cpu          (a) job throughput with 1 and 2 CPU workers (--threads 1)
//   coordinator  (b) the coordinator's capacity with 1..64 bench-engine
//                    workers (tasks padded to a fixed time): tasks/s,
//                    lease-grant latency, coordinator CPU per task
//   streaming    (c) FetchTensor and UploadResult MB/s
// The defaults take about three minutes on a 2-core machine; the flags
// shrink it. Results are in docs/performance.md.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "bench/bench_service.h"
#include "bench/benchmarks.h"
#include "bench/scaling.h"
#include "nlohmann/json.hpp"

namespace glvq::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct CliOptions {
  ScalingOptions run;
  std::vector<std::string> sections = {"cpu", "coordinator", "streaming"};
  std::string work_dir;
  bool json = false;
};

void Print(const std::vector<CpuRow>& rows, const ScalingOptions& o, bool as_json) {
  if (!as_json) {
    std::cout << absl::StrFormat(
        "(a) CPU engine: example model, %d layers, hidden %d; GLVQ 2 bit, d 8; workers "
        "--threads 1; fastest of %d jobs\n%7s %6s %10s %10s %10s %11s %8s\n",
        o.cpu_layers, o.cpu_hidden, o.cpu_repeats, "workers", "tasks", "Mweights", "committed",
        "written", "Mweights/s", "speedup");
  }
  for (const CpuRow& r : rows) {
    if (as_json) {
      std::cout << json{{"section", "cpu"},
                        {"workers", r.workers},
                        {"tasks", r.tasks},
                        {"weights", r.weights},
                        {"seconds_committed", r.seconds_committed},
                        {"seconds_done", r.seconds_done},
                        {"mweights_per_s", r.mweights_per_s},
                        {"speedup", r.speedup}}
                       .dump()
                << std::endl;
    } else {
      std::cout << absl::StrFormat("%7d %6d %10.2f %9.2fs %9.2fs %11.3f %7.2fx\n", r.workers,
                                   r.tasks, static_cast<double>(r.weights) / 1e6,
                                   r.seconds_committed, r.seconds_done, r.mweights_per_s,
                                   r.speedup);
    }
  }
}

void Print(const std::vector<CapacityRow>& rows, const ScalingOptions& o, bool as_json) {
  if (!as_json) {
    std::cout << absl::StrFormat(
        "(b) coordinator: bench-engine workers, %g s per task, %d tasks per worker; grant and "
        "upload: round trips at the workers (ms); wait: their mean per task / task time; CPU: "
        "the coordinator's\n%7s %6s %8s %8s %8s %9s %9s %9s %9s %7s %9s %9s %7s\n",
        o.task_seconds, o.rounds, "workers", "tasks", "seconds", "ideal", "tasks/s", "grant p50",
        "grant p99", "upl p50", "upl p99", "wait", "CPU", "CPU/task", "CPU/job");
  }
  for (const CapacityRow& r : rows) {
    if (as_json) {
      std::cout << json{{"section", "coordinator"},
                        {"workers", r.workers},
                        {"tasks", r.tasks},
                        {"task_seconds", o.task_seconds},
                        {"seconds", r.seconds},
                        {"ideal_seconds", r.ideal_seconds},
                        {"tasks_per_s", r.tasks_per_s},
                        {"grant_p50_ms", r.grant_p50_ms},
                        {"grant_p99_ms", r.grant_p99_ms},
                        {"upload_p50_ms", r.upload_p50_ms},
                        {"upload_p99_ms", r.upload_p99_ms},
                        {"wait_share", r.wait_share},
                        {"coordinator_cpu_s", r.coordinator_cpu_s},
                        {"cpu_ms_per_task", r.cpu_ms_per_task},
                        {"cpu_share", r.cpu_share}}
                       .dump()
                << std::endl;
    } else {
      std::cout << absl::StrFormat(
          "%7d %6d %7.2fs %7.2fs %8.1f %9.2f %9.2f %9.2f %9.2f %6.2f%% %8.3fs %7.2fms %6.2f%%\n",
          r.workers, r.tasks, r.seconds, r.ideal_seconds, r.tasks_per_s, r.grant_p50_ms,
          r.grant_p99_ms, r.upload_p50_ms, r.upload_p99_ms, 100 * r.wait_share, r.coordinator_cpu_s,
          r.cpu_ms_per_task, 100 * r.cpu_share);
    }
  }
}

void Print(const std::vector<StreamRow>& rows, bool as_json) {
  if (!as_json) {
    std::cout << absl::StrFormat(
        "(c) streaming on loopback (4 MiB chunks, CRC32C each)\n"
        "%-14s %9s %8s %9s %8s\n",
        "stream", "MB", "streams", "median", "MB/s");
  }
  for (const StreamRow& r : rows) {
    if (as_json) {
      std::cout << json{{"section", "streaming"}, {"stream", r.what},
                        {"bytes", r.bytes},       {"streams", r.streams},
                        {"median_s", r.median_s}, {"mb_per_s", r.mb_per_s}}
                       .dump()
                << std::endl;
    } else {
      std::cout << absl::StrFormat("%-14s %9.1f %8d %8.3fs %8.0f\n", r.what,
                                   static_cast<double>(r.bytes) / 1e6, r.streams, r.median_s,
                                   r.mb_per_s);
    }
  }
}

bool Wants(const CliOptions& o, const std::string& section) {
  return std::find(o.sections.begin(), o.sections.end(), section) != o.sections.end();
}

int RunScaling(CliOptions o) {
  ScalingOptions& run = o.run;
  run.bin_dir = OwnBinDir();
  std::string scratch;
  if (o.work_dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "glvq-scaling-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "glvq-bench scaling: cannot create a temporary directory\n";
      return 1;
    }
    scratch = pattern;
    run.work_dir = scratch;
  } else {
    run.work_dir = o.work_dir;
  }
  absl::Status status;
  if (Wants(o, "cpu")) {
    auto rows = RunCpuScaling(run);
    status.Update(rows.status());
    if (rows.ok()) Print(*rows, run, o.json);
  }
  if (status.ok() && Wants(o, "coordinator")) {
    auto rows = RunCoordinatorCapacity(run);
    status.Update(rows.status());
    if (rows.ok()) Print(*rows, run, o.json);
  }
  if (status.ok() && Wants(o, "streaming")) {
    auto rows = RunStreaming(run);
    status.Update(rows.status());
    if (rows.ok()) Print(*rows, o.json);
  }
  if (!status.ok()) {
    std::cerr << "glvq-bench scaling: " << status.message() << " (logs kept in "
              << run.work_dir.string() << ")\n";
    return 1;
  }
  if (!scratch.empty()) fs::remove_all(scratch);
  return 0;
}

}  // namespace

void RegisterScalingBench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "scaling", "The service on loopback: CPU workers, coordinator capacity, streaming");
  auto o = std::make_shared<CliOptions>();
  ScalingOptions& r = o->run;
  cmd->add_option("--sections", o->sections, "Which measurements")
      ->check(CLI::IsMember({"cpu", "coordinator", "streaming"}))
      ->capture_default_str();
  cmd->add_option("--cpu-workers", r.cpu_workers, "(a) worker counts")->capture_default_str();
  cmd->add_option("--cpu-layers", r.cpu_layers, "(a) example model layers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--cpu-hidden", r.cpu_hidden, "(a) example model hidden size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--cpu-repeats", r.cpu_repeats, "(a) jobs per worker count, fastest kept")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--bench-workers", r.bench_workers, "(b) worker counts")->capture_default_str();
  cmd->add_option("--task-seconds", r.task_seconds, "(b) time per task")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--rounds", r.rounds, "(b) tasks per worker")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--stream-rows", r.stream_rows, "(c) weight rows")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--stream-cols", r.stream_cols, "(c) weight columns")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--stream-repeats", r.stream_repeats, "(c) streams timed per kind")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--work-dir", o->work_dir,
                  "Keep models, state and logs here (default: a temporary directory, removed)");
  cmd->add_flag("--json", o->json, "One JSON object per row");
  cmd->callback([o] {
    if (const int rc = RunScaling(*o); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace glvq::bench
