// The runs of `glvq-bench chaos` (chaos.h).
#include <fstream>
#include <iterator>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_service.h"
#include "bench/chaos.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/synthetic/example_model.h"

namespace glvq::bench {
namespace {

namespace fs = std::filesystem;

quant::QuantizerConfig ChaosQuantizer() {
  quant::QuantizerConfig q;
  q.method = quant::Method::kRtn;
  q.bits = 4;
  q.group_size = 128;
  return q;
}

fs::path ModelDir(const ChaosOptions& o) { return o.work_dir / "model"; }

std::set<fs::path> RelativeFiles(const fs::path& dir) {
  std::set<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files.insert(e.path().lexically_relative(dir));
  }
  return files;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The first file (relative path) that is missing from one side or whose
// bytes differ; empty when both trees hold the same files, byte for byte.
std::string FirstDifference(const fs::path& a, const fs::path& b) {
  const std::set<fs::path> files_a = RelativeFiles(a), files_b = RelativeFiles(b);
  std::set<fs::path> all = files_a;
  all.insert(files_b.begin(), files_b.end());
  for (const fs::path& f : all) {
    if (!files_a.contains(f)) return absl::StrCat(f.string(), " (only in the chaos run)");
    if (!files_b.contains(f)) return absl::StrCat(f.string(), " (only in the reference)");
    if (ReadAll(a / f) != ReadAll(b / f)) return f.string();
  }
  return "";
}

bool Terminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

}  // namespace

absl::StatusOr<fs::path> RunChaosReference(const ChaosOptions& o) {
  ExampleModelOptions m;
  m.hidden = o.hidden;
  m.intermediate = o.hidden * 43 / 16;  // the example model's 688 / 256
  m.layers = o.layers;
  RETURN_IF_ERROR(WriteExampleModel(ModelDir(o), m));
  const fs::path dir = o.work_dir / "reference";
  ASSIGN_OR_RETURN(auto service, BenchService::Start(o.bin_dir, dir));
  RETURN_IF_ERROR(service->StartWorkers(2, {"--threads", "1"}));
  ASSIGN_OR_RETURN(const v1::Job job,
                   service->Submit(JobFor("chaos-reference", ModelDir(o), dir / "out",
                                          ChaosQuantizer())));
  RETURN_IF_ERROR(service->Follow(job.id(), absl::Now()).status());
  return dir / "out";
}

absl::StatusOr<ChaosTrial> RunChaosTrial(const ChaosOptions& o, int trial,
                                         const fs::path& reference) {
  const fs::path dir = o.work_dir / absl::StrCat("trial-", trial);
  // Enough attempts that no task runs out of them however often the kills
  // hit it, and no worker set aside: the trial tests recovery, not limits.
  ASSIGN_OR_RETURN(auto service,
                   BenchService::Start(o.bin_dir, dir,
                                       {"--lease-seconds", absl::StrCat(o.lease_seconds),
                                        "--max-attempts", "1000", "--set-aside-after", "0"}));
  RETURN_IF_ERROR(service->StartWorkers(
      o.workers, {"--threads", "1", "--task-delay-ms", absl::StrCat(o.task_delay_ms)}));
  ChaosTrial r;
  r.trial = trial;
  const absl::Time submitted = absl::Now();
  ASSIGN_OR_RETURN(const v1::Job submitted_job,
                   service->Submit(JobFor("chaos", ModelDir(o), dir / "out", ChaosQuantizer())));
  r.tasks = static_cast<int>(submitted_job.status().plan().tasks());
  Rng rng(DeriveSeed(o.seed, static_cast<uint64_t>(trial)));
  const absl::Duration kill_every = absl::Seconds(o.kill_every_seconds);
  absl::Time next_kill = submitted + kill_every;
  const absl::Time deadline = submitted + absl::Minutes(15);
  int retries_earlier_lives = 0, retries_this_life = 0;
  v1::JobStatus last;
  while (!Terminal(last.state())) {
    if (absl::Now() > deadline) {
      r.error = "did not end within 15 minutes";
      break;
    }
    // GetJob fails while the coordinator restarts; the kills go on.
    if (auto job = service->GetJob(submitted_job.id()); job.ok()) {
      last = job->status();
      retries_this_life = static_cast<int>(last.progress().task_retries());
      // Once, half way through the tasks: the restart must resume the job
      // from the journal, keep the committed results and redo the rest.
      if (r.coordinator_restarts == 0 && !Terminal(last.state()) &&
          2 * last.progress().tasks_done() >= last.progress().tasks_total()) {
        retries_earlier_lives += retries_this_life;
        retries_this_life = 0;
        RETURN_IF_ERROR(service->RestartCoordinator());
        ++r.coordinator_restarts;
      }
    }
    if (absl::Now() >= next_kill && !Terminal(last.state())) {
      RETURN_IF_ERROR(service->ReplaceWorker(static_cast<int>(rng.Below(o.workers))));
      ++r.workers_killed;
      next_kill += kill_every;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  r.seconds = absl::ToDoubleSeconds(absl::Now() - submitted);
  r.retries = retries_earlier_lives + retries_this_life;
  r.succeeded = last.state() == v1::JOB_STATE_SUCCEEDED;
  if (!r.succeeded && r.error.empty()) {
    r.error = absl::StrCat(v1::JobState_Name(last.state()), ": ", last.error_message());
  }
  if (r.succeeded) {
    r.first_difference = FirstDifference(dir / "out", reference);
    r.identical = r.first_difference.empty();
  }
  return r;
}

}  // namespace glvq::bench
