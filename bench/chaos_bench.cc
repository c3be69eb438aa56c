// `glvq-bench chaos`: the service's recovery under failures, on real
// processes over loopback. Each trial runs one job over --workers
// glvq-worker processes, SIGKILLs a random worker every
// --kill-every-seconds (and starts a replacement), SIGKILLs and restarts
// the coordinator once half the tasks are committed, follows the job to
// SUCCEEDED and compares its output byte for byte with a clean run's.
// Exits 1 if any trial's job fails or its output differs. Results are in
// docs/performance.md.
#include <unistd.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "bench/bench_service.h"
#include "bench/benchmarks.h"
#include "bench/chaos.h"
#include "nlohmann/json.hpp"

namespace glvq::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct ChaosCliOptions {
  ChaosOptions run;
  int trials = 3;
  std::string work_dir;
  bool json = false;
};

void PrintHeader(const ChaosOptions& o) {
  std::cout << absl::StrFormat(
      "chaos: example model, %d layers, hidden %d; RTN 4 bit; %d workers (--task-delay-ms %d), "
      "one SIGKILLed and replaced every %g s; coordinator (--lease-seconds %g) SIGKILLed and "
      "restarted once; output compared with a clean run\n%5s %6s %7s %12s %8s %9s %10s\n",
      o.layers, o.hidden, o.workers, o.task_delay_ms, o.kill_every_seconds, o.lease_seconds,
      "trial", "tasks", "killed", "coord restart", "retries", "seconds", "identical");
}

void Print(const ChaosTrial& r, bool as_json) {
  if (as_json) {
    std::cout << json{{"trial", r.trial},
                      {"tasks", r.tasks},
                      {"workers_killed", r.workers_killed},
                      {"coordinator_restarts", r.coordinator_restarts},
                      {"retries", r.retries},
                      {"seconds", r.seconds},
                      {"succeeded", r.succeeded},
                      {"identical", r.identical},
                      {"error", r.error},
                      {"first_difference", r.first_difference}}
                     .dump()
              << std::endl;
    return;
  }
  std::string identical = r.identical ? "yes" : "no";
  if (!r.succeeded) identical = "job: " + r.error;
  if (!r.first_difference.empty()) identical += " (" + r.first_difference + ")";
  std::cout << absl::StrFormat("%5d %6d %7d %12d %8d %8.1fs %10s\n", r.trial, r.tasks,
                               r.workers_killed, r.coordinator_restarts, r.retries, r.seconds,
                               identical);
}

int RunChaos(ChaosCliOptions o) {
  ChaosOptions& run = o.run;
  run.bin_dir = OwnBinDir();
  std::string scratch;
  if (o.work_dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "glvq-chaos-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "glvq-bench chaos: cannot create a temporary directory\n";
      return 1;
    }
    scratch = pattern;
    run.work_dir = scratch;
  } else {
    run.work_dir = o.work_dir;
  }
  if (!o.json) PrintHeader(run);
  absl::StatusOr<fs::path> reference = RunChaosReference(run);
  absl::Status status = reference.status();
  bool all_good = status.ok();
  for (int t = 0; status.ok() && t < o.trials; ++t) {
    absl::StatusOr<ChaosTrial> trial = RunChaosTrial(run, t, *reference);
    status = trial.status();
    if (!trial.ok()) break;
    Print(*trial, o.json);
    all_good = all_good && trial->succeeded && trial->identical;
  }
  if (!status.ok()) {
    std::cerr << "glvq-bench chaos: " << status.message() << "\n";
    all_good = false;
  }
  if (!all_good) {
    std::cerr << "glvq-bench chaos: FAILED (logs kept in " << run.work_dir.string() << ")\n";
    return 1;
  }
  if (!scratch.empty()) fs::remove_all(scratch);
  return 0;
}

}  // namespace

void RegisterChaosBench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "chaos", "Kill workers and the coordinator during a job; check byte-identical output");
  auto o = std::make_shared<ChaosCliOptions>();
  ChaosOptions& r = o->run;
  cmd->add_option("--trials", o->trials, "Jobs run under chaos")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--workers", r.workers, "Worker processes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--kill-every-seconds", r.kill_every_seconds,
                  "SIGKILL a random worker this often")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--seed", r.seed, "Seed of the kill schedule (trial t: derived from it and t)")
      ->capture_default_str();
  cmd->add_option("--layers", r.layers, "Example model layers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--hidden", r.hidden, "Example model hidden size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--task-delay-ms", r.task_delay_ms, "Workers pause this long before each task")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--lease-seconds", r.lease_seconds, "The coordinator's lease duration")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--work-dir", o->work_dir,
                  "Keep models, outputs, state and logs in this new directory (default: a "
                  "temporary directory, removed on success)");
  cmd->add_flag("--json", o->json, "One JSON object per trial");
  cmd->callback([o] {
    if (const int rc = RunChaos(*o); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace glvq::bench
