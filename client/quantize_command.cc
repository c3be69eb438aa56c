// `glvq quantize`: embedded mode. A coordinator and N workers in this
// process, talking over in-process gRPC channels — the same code path as a
// cluster (docs/service.md), without network or daemons — then the
// quality report of the written model. The output is byte-identical for
// any --workers.
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/job_finetune.h"
#include "client/text_calibration.h"
#include "client/job_watch.h"
#include "client/quality_report.h"
#include "client/service_client.h"
#include "common/base/logging.h"
#include "common/base/machine.h"
#include "common/base/status_macros.h"
#include "common/jobspec/byte_quantity.h"
#include "common/jobspec/job_spec.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/rpc/grpc_util.h"
#include "coordinator/server.h"
#include "worker/service/worker.h"

namespace glvq::cli {
namespace {

struct QuantizeArgs {
  std::string model, out, config, output = "text";
  int workers = 1, threads = 0;
  std::optional<double> bits;
  std::optional<int> dim, group_size;
  std::optional<uint64_t> seed;
  std::optional<bool> rht, ldlq, refit_scales;
  std::optional<double> mu_min, mu_max;
  std::optional<int> mu_grid, trellis_tile_rows;
  std::string method, max_task_memory, preset, hessians, rtn_variant;
};

// A DNS-1123 job name from the output directory's name.
std::string NameFor(const std::filesystem::path& out) {
  std::string name;
  for (char c : out.filename().string()) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c));
    if (ok || (!name.empty() && name.back() != '-')) name.push_back(ok ? char(std::tolower(c)) : '-');
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  name = name.substr(0, 50);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name.empty() ? "quantize" : name;
}

absl::Status ApplyQuantizerFlags(const QuantizeArgs& a, v1::JobSpec* spec) {
  ASSIGN_OR_RETURN(quant::QuantizerConfig c, jobspec::ToQuantizerConfig(spec->quantizer()));
  if (!a.preset.empty()) {
    // A loaded job spec is normalised (every field explicit), so the preset
    // cannot tell its tuning from defaults: it keeps what the job is (method,
    // bits, dim, group size, seed, threads) and takes the rest from the preset.
    quant::QuantizerConfig p =
        quant::PresetConfig(a.preset == "paper" ? quant::Preset::kPaper : quant::Preset::kBest);
    p.method = c.method;
    p.bits = c.bits;
    p.dim = c.dim;
    p.group_size = c.group_size;
    p.seed = c.seed;
    p.threads = c.threads;
    c = p;
  }
  if (!a.method.empty()) {
    const std::optional<quant::Method> m = quant::ParseMethod(a.method);
    if (!m) return absl::InvalidArgumentError(absl::StrCat("--method: unknown method ", a.method));
    c.method = *m;
    // A job from flags alone takes the method's own default group size.
    if (!spec->quantizer().has_group_size()) c.group_size = quant::DefaultGroupSize(c.method);
  }
  if (a.bits) c.bits = *a.bits;
  if (a.dim) c.dim = *a.dim;
  if (a.group_size) c.group_size = *a.group_size;
  if (a.seed) c.seed = *a.seed;
  if (a.rht) c.rht = *a.rht;
  if (a.ldlq) c.ldlq = *a.ldlq;
  if (a.refit_scales) c.refit_scales = *a.refit_scales;
  if (a.trellis_tile_rows) c.trellis.tile_rows = *a.trellis_tile_rows;
  if (a.mu_min) c.glvq.mu_min = *a.mu_min;
  if (a.mu_max) c.glvq.mu_max = *a.mu_max;
  if (a.mu_grid) c.glvq.mu_grid = *a.mu_grid;
  if (!a.rtn_variant.empty()) {
    c.rtn_variant = a.rtn_variant == "minMax" ? quant::RtnVariant::kMinMax
                                              : quant::RtnVariant::kClipSearch;
  }
  if (!a.hessians.empty()) {
    spec->mutable_calibration()->set_hessians(std::filesystem::absolute(a.hessians).string());
  }
  *spec->mutable_quantizer() = jobspec::FromQuantizerConfig(c);
  if (!a.max_task_memory.empty()) {
    ASSIGN_OR_RETURN(const uint64_t budget, jobspec::ParseByteQuantity(a.max_task_memory));
    spec->mutable_workers()->set_max_task_memory_bytes(budget);
  }
  return absl::OkStatus();
}

// The job: from --config if given, with --model/--out and the quantizer
// flags on top.
absl::StatusOr<v1::QuantizationJob> BuildJob(const QuantizeArgs& a) {
  v1::QuantizationJob job;
  if (!a.config.empty()) {
    ASSIGN_OR_RETURN(jobspec::ParsedJob parsed, jobspec::LoadJobFile(a.config));
    job = std::move(parsed.job);
  } else {
    if (a.model.empty() || a.out.empty()) {
      return absl::InvalidArgumentError("give --model and --out, or --config job.yaml");
    }
    job.set_api_version(jobspec::kApiVersion);
    job.set_kind(jobspec::kKind);
    job.mutable_metadata()->set_name(NameFor(a.out));
    for (const std::string& p : jobspec::DefaultIncludePatterns()) {
      job.mutable_spec()->mutable_tensors()->add_include(p);
    }
    for (const std::string& p : jobspec::DefaultExcludePatterns()) {
      job.mutable_spec()->mutable_tensors()->add_exclude(p);
    }
    job.mutable_spec()->mutable_workers()->set_backend(v1::BACKEND_AUTO);
  }
  v1::JobSpec& spec = *job.mutable_spec();
  if (!a.model.empty()) spec.mutable_model()->set_path(std::filesystem::absolute(a.model).string());
  if (!a.out.empty()) spec.mutable_output()->set_path(std::filesystem::absolute(a.out).string());
  RETURN_IF_ERROR(ApplyQuantizerFlags(a, &spec));
  return job;
}

// A scratch state dir for the embedded coordinator, removed afterwards.
class TempStateDir {
 public:
  TempStateDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "glvq-embedded-XXXXXX");
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempStateDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Runs the job in-process; returns the final Job.
absl::StatusOr<v1::Job> RunEmbedded(const QuantizeArgs& a, const v1::QuantizationJob& job) {
  TempStateDir state;
  if (state.path().empty()) return absl::InternalError("cannot create a temporary state dir");
  coordinator::SchedulerOptions options;
  options.state_dir = state.path();
  options.lease_duration = absl::Minutes(5);  // workers share this process: no one gets lost
  ASSIGN_OR_RETURN(auto server, coordinator::CoordinatorServer::Start("", options));

  worker::WorkerOptions wopt;
  ASSIGN_OR_RETURN(wopt.backend,
                   worker::ResolveLocalBackend(worker::RequestFor(job.spec().workers().backend())));
  if (!wopt.backend.fallback_reason.empty()) {
    GLVQ_LOG(kInfo) << "backend auto: the CPU engine (" << wopt.backend.fallback_reason << ")";
  }
  wopt.hostname = "embedded";
  // 0: the usable cores shared out among the in-process workers.
  wopt.threads = a.threads > 0 ? a.threads : std::max(1, UsableCores() / a.workers);
  wopt.pull_wait = absl::Milliseconds(500);
  std::vector<std::unique_ptr<worker::Worker>> workers;
  std::vector<std::thread> threads;
  for (int i = 0; i < a.workers; ++i) {
    workers.push_back(std::make_unique<worker::Worker>(server->InProcessChannel(), wopt));
    threads.emplace_back([w = workers.back().get()] { (void)w->Run(); });
  }
  auto stop = [&] {
    for (auto& w : workers) w->Stop();
    for (auto& t : threads) t.join();
    server->Shutdown();
  };

  auto stub = v1::JobService::NewStub(server->InProcessChannel());
  v1::SubmitJobRequest request;
  *request.mutable_job() = job;
  v1::SubmitJobResponse response;
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Minutes(5));
  if (absl::Status s = rpc::FromGrpcStatus(stub->SubmitJob(&context, request, &response));
      !s.ok()) {
    stop();
    return s;
  }
  WatchOptions watch;
  watch.style = a.output == "json" ? WatchOptions::Style::kQuiet : DefaultStyle(STDERR_FILENO);
  watch.columns = TerminalColumns(STDERR_FILENO);
  watch.out = &std::cerr;
  absl::StatusOr<v1::Job> done = WatchJob(*stub, response.job().id(), watch);
  stop();
  return done;
}

void Report(const QuantizeArgs& a, const v1::Job& job) {
  const std::string out = job.definition().spec().output().path();
  absl::StatusOr<PackedModel> model = job.status().state() == v1::JOB_STATE_SUCCEEDED
                                          ? PackedModel::Open(out)
                                          : absl::StatusOr<PackedModel>(absl::NotFoundError(""));
  if (a.output == "json") {
    nlohmann::ordered_json j = {{"job", ProtoJson(job)}};
    if (model.ok()) j["report"] = QualityReportJson(*model);
    std::cout << j.dump(2) << "\n";
    return;
  }
  PrintJob(job, std::cout);
  if (model.ok()) PrintQualityReport(*model, std::cout);
}

}  // namespace

void RegisterQuantizeCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand(
      "quantize", "Quantize a model on this machine (embedded coordinator and workers)");
  cmd->add_option("--model", a->model, "Model: safetensors file or directory");
  cmd->add_option("--out", a->out, "Output directory (must not exist)");
  cmd->add_option("--config", a->config, "Job spec (YAML); --model/--out and flags override it");
  cmd->add_option("--workers", a->workers, "Workers in this process")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--threads", a->threads,
                  "Engine threads per worker (0: the usable cores, container quota included, "
                  "shared among --workers)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--method", a->method, "glvq, rtn, gptq, e8p, pvq or trellis");
  cmd->add_option("--bits", a->bits, "Average code bits per weight");
  cmd->add_option("--dim", a->dim, "Lattice dimension (glvq), vector dimension D (pvq)");
  cmd->add_option("--group-size", a->group_size, "Columns per group");
  cmd->add_option("--seed", a->seed, "Seed of every random choice");
  cmd->add_option("--preset", a->preset,
                  "Tuning: best (measured on a real model; the default) or paper (the GLVQ "
                  "paper's: mu in [10, 255], no RHT, no LDLQ); keeps method, bits, dim, group "
                  "size, seed and threads, and the flags below still apply")
      ->check(CLI::IsMember({"best", "paper"}));
  cmd->add_option("--hessians", a->hessians,
                  "Hessians from `glvq calibrate` (weights the loss by real inputs; "
                  "without them H = I)");
  cmd->add_option("--rht", a->rht, "Randomized Hadamard transform: true or false (default true)");
  cmd->add_option("--ldlq", a->ldlq,
                  "Cross-group error feedback with the Hessian (glvq): true or false (default true)");
  cmd->add_option("--refit-scales", a->refit_scales,
                  "trellis: refit the row and group gains to the Hessian-weighted loss after "
                  "coding: true or false (default true)");
  cmd->add_option("--trellis-tile-rows", a->trellis_tile_rows,
                  "trellis: rows per tail-biting sequence, 1, 2, 4, ..., 64 (default 16: "
                  "16-row x group-size tiles)");
  cmd->add_option("--mu-min", a->mu_min, "glvq companding range, lower end (default 0)");
  cmd->add_option("--mu-max", a->mu_max, "glvq companding range, upper end (default 0: off; 5 with --mu-grid 6: the per-group grid)");
  cmd->add_option("--mu-grid", a->mu_grid,
                  "glvq: mu candidates tried per group (default 6; 0: the paper's kurtosis start)");
  cmd->add_option("--rtn-variant", a->rtn_variant,
                  "rtn and gptq grid: clipSearch (symmetric, clip searched; the default) or "
                  "minMax (integer zero point: what `glvq export --format gptq` needs)")
      ->check(CLI::IsMember({"clipSearch", "minMax"}));
  cmd->add_option("--max-task-memory", a->max_task_memory,
                  "Memory budget per task (bytes or 8Gi/512Mi); splits large tensors");
  AddJsonOutputFlag(cmd, &a->output);
  cmd->callback([a, exit_code] {
    absl::StatusOr<v1::QuantizationJob> job = BuildJob(*a);
    ServiceArgs report_args;
    report_args.output = a->output;
    if (!job.ok()) {
      PrintError(report_args, job.status());
      *exit_code = kExitBadInput;
      return;
    }
    // Validate first: calibration from text can take minutes.
    absl::Status ready = jobspec::ValidateJob(*job);
    if (ready.ok()) ready = PrepareTextCalibration(job->spec(), a->threads, std::cerr);
    if (!ready.ok()) {
      PrintError(report_args, ready);
      *exit_code = kExitBadInput;
      return;
    }
    // The coordinator quantizes; fine-tuning runs here, on its output.
    v1::QuantizationJob submitted = *job;
    submitted.mutable_spec()->clear_finetune();
    absl::StatusOr<v1::Job> done = RunEmbedded(*a, submitted);
    if (done.ok() && done->status().state() == v1::JOB_STATE_SUCCEEDED) {
      const absl::Status tuned = FinetuneJobOutput(job->spec(), a->threads, std::cerr);
      if (!tuned.ok()) done = tuned;
    }
    if (!done.ok()) {
      PrintError(report_args, done.status());
      *exit_code = kExitBadInput;
      return;
    }
    Report(*a, *done);
    *exit_code = ExitCodeFor(done->status().state());
  });
}

}  // namespace glvq::cli
