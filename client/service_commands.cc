// The commands that talk to a coordinator: `glvq submit|status|watch|
// cancel|list|workers`. Exit codes: docs/service.md.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <random>

#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/job_watch.h"
#include "client/quality_report.h"
#include "client/service_client.h"
#include "common/jobspec/job_spec.h"
#include "common/packed/packed_model.h"
#include "common/rpc/grpc_util.h"

namespace glvq::cli {
namespace {

// A fresh idempotency key: a retried SubmitJob call with it creates no
// second job.
std::string RequestId() {
  std::random_device rd;
  return absl::StrFormat("%08x%08x%08x", rd(), rd(), rd());
}

// Follows the job to its end and reports it; returns the exit code.
int WaitAndReport(v1::JobService::Stub& stub, const std::string& job_id, const ServiceArgs& args) {
  WatchOptions options;
  options.style = args.json() ? WatchOptions::Style::kQuiet : DefaultStyle(STDERR_FILENO);
  options.columns = TerminalColumns(STDERR_FILENO);
  options.out = &std::cerr;
  options.call_timeout = args.timeout();
  absl::StatusOr<v1::Job> job = WatchJob(stub, job_id, options);
  if (!job.ok()) {
    PrintError(args, job.status());
    return ExitCodeFor(job.status());
  }
  if (args.json()) {
    std::cout << ProtoJson(*job).dump(2) << "\n";
    return ExitCodeFor(job->status().state());
  }
  PrintJob(*job, std::cout);
  // The per-tensor report when the output is visible from here.
  const std::string out = job->definition().spec().output().path();
  if (job->status().state() == v1::JOB_STATE_SUCCEEDED && std::filesystem::exists(out)) {
    if (absl::StatusOr<PackedModel> model = PackedModel::Open(out); model.ok()) {
      PrintQualityReport(*model, std::cout);
    }
  }
  return ExitCodeFor(job->status().state());
}

void RegisterSubmit(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServiceArgs>();
  auto file = std::make_shared<std::string>();
  auto wait = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("submit", "Submit a job spec to the coordinator");
  cmd->add_option("job", *file, "Job spec (YAML)")->required();
  cmd->add_flag("--wait", *wait, "Follow the job until it ends; exit with its outcome");
  AddServiceOptions(cmd, args.get());
  cmd->callback([=] {
    absl::StatusOr<jobspec::ParsedJob> parsed = jobspec::LoadJobFile(*file);
    if (!parsed.ok()) {
      PrintError(*args, parsed.status());
      *exit_code = kExitBadInput;
      return;
    }
    auto stub = JobStub(*args);
    if (!stub.ok()) {
      PrintError(*args, stub.status());
      *exit_code = ExitCodeFor(stub.status());
      return;
    }
    v1::SubmitJobRequest request;
    *request.mutable_job() = parsed->job;
    request.set_request_id(RequestId());
    v1::SubmitJobResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, *args);
    if (absl::Status s = rpc::FromGrpcStatus((*stub)->SubmitJob(&context, request, &response));
        !s.ok()) {
      PrintError(*args, s);
      *exit_code = ExitCodeFor(s);
      return;
    }
    const v1::Job& job = response.job();
    if (!*wait) {
      if (args->json()) {
        std::cout << ProtoJson(job).dump(2) << "\n";
      } else {
        std::cout << absl::StrFormat("submitted job %s (%d tasks)\n", job.id(),
                                     job.status().plan().tasks());
      }
      return;
    }
    if (!args->json()) std::cerr << "submitted job " << job.id() << "\n";
    *exit_code = WaitAndReport(**stub, job.id(), *args);
  });
}

// A unary call with the standard error handling; `print` gets the reply.
template <typename Request, typename Reply, typename Call, typename Print>
int Unary(const ServiceArgs& args, const Request& request, Call call, Print print) {
  auto stub = JobStub(args);
  if (!stub.ok()) {
    PrintError(args, stub.status());
    return ExitCodeFor(stub.status());
  }
  grpc::ClientContext context;
  SetDeadline(&context, args);
  Reply reply;
  if (absl::Status s = rpc::FromGrpcStatus(((**stub).*call)(&context, request, &reply)); !s.ok()) {
    PrintError(args, s);
    return ExitCodeFor(s);
  }
  return print(reply);
}

void RegisterStatus(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServiceArgs>();
  auto id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("status", "Show a job's state, progress and quality");
  cmd->add_option("job", *id, "Job id")->required();
  AddServiceOptions(cmd, args.get());
  cmd->callback([=] {
    v1::GetJobRequest request;
    request.set_job_id(*id);
    *exit_code = Unary<v1::GetJobRequest, v1::Job>(
        *args, request, &v1::JobService::Stub::GetJob, [&](const v1::Job& job) {
          if (args->json()) {
            std::cout << ProtoJson(job).dump(2) << "\n";
          } else {
            PrintJob(job, std::cout);
          }
          return ExitCodeFor(job.status().state());
        });
  });
}

void RegisterWatch(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServiceArgs>();
  auto id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "watch", "Follow a job: progress bar on a terminal, periodic lines otherwise");
  cmd->add_option("job", *id, "Job id")->required();
  AddServiceOptions(cmd, args.get());
  cmd->callback([=] {
    auto stub = JobStub(*args);
    if (!stub.ok()) {
      PrintError(*args, stub.status());
      *exit_code = ExitCodeFor(stub.status());
      return;
    }
    WatchOptions options;
    options.style = args->json() ? WatchOptions::Style::kJson : DefaultStyle(STDOUT_FILENO);
    options.columns = TerminalColumns(STDOUT_FILENO);
    options.out = &std::cout;
    options.call_timeout = args->timeout();
    absl::StatusOr<v1::Job> job = WatchJob(**stub, *id, options);
    if (!job.ok()) {
      PrintError(*args, job.status());
      *exit_code = ExitCodeFor(job.status());
      return;
    }
    if (!args->json()) PrintJob(*job, std::cout);
    *exit_code = ExitCodeFor(job->status().state());
  });
}

void RegisterCancel(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServiceArgs>();
  auto request = std::make_shared<v1::CancelJobRequest>();
  auto* cmd = app.add_subcommand("cancel", "Cancel a running job");
  cmd->add_option_function<std::string>(
         "job", [request](const std::string& id) { request->set_job_id(id); }, "Job id")
      ->required();
  cmd->add_option_function<std::string>(
      "--reason", [request](const std::string& r) { request->set_reason(r); },
      "Recorded with the job");
  AddServiceOptions(cmd, args.get());
  cmd->callback([=] {
    *exit_code = Unary<v1::CancelJobRequest, v1::Job>(
        *args, *request, &v1::JobService::Stub::CancelJob, [&](const v1::Job& job) {
          if (args->json()) {
            std::cout << ProtoJson(job).dump(2) << "\n";
          } else {
            std::cout << "job " << job.id() << ": " << StateName(job.status().state()) << "\n";
          }
          return kExitOk;
        });
  });
}

void RegisterList(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServiceArgs>();
  auto* cmd = app.add_subcommand("list", "List the coordinator's jobs, newest first");
  AddServiceOptions(cmd, args.get());
  cmd->callback([=] {
    *exit_code = Unary<v1::ListJobsRequest, v1::ListJobsResponse>(
        *args, v1::ListJobsRequest(), &v1::JobService::Stub::ListJobs,
        [&](const v1::ListJobsResponse& r) {
          if (args->json()) {
            std::cout << ProtoJson(r).dump(2) << "\n";
            return kExitOk;
          }
          std::cout << absl::StrFormat("%-40s  %-11s  %11s  %s\n", "JOB", "STATE", "TASKS",
                                       "OUTPUT");
          for (const v1::Job& j : r.jobs()) {
            const v1::Progress& p = j.status().progress();
            std::cout << absl::StrFormat("%-40s  %-11s  %5d/%-5d  %s\n", j.id(),
                                         StateName(j.status().state()), p.tasks_done(),
                                         p.tasks_total(), j.definition().spec().output().path());
          }
          return kExitOk;
        });
  });
}

void RegisterWorkers(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServiceArgs>();
  auto* cmd = app.add_subcommand("workers", "List the workers known to the coordinator");
  AddServiceOptions(cmd, args.get());
  cmd->callback([=] {
    *exit_code = Unary<v1::ListWorkersRequest, v1::ListWorkersResponse>(
        *args, v1::ListWorkersRequest(), &v1::JobService::Stub::ListWorkers,
        [&](const v1::ListWorkersResponse& r) {
          if (args->json()) {
            std::cout << ProtoJson(r).dump(2) << "\n";
            return kExitOk;
          }
          std::cout << absl::StrFormat("%-8s  %-20s  %-9s  %9s  %6s  %s\n", "WORKER", "HOST",
                                       "STATE", "COMPLETED", "FAILED", "TASKS");
          for (const v1::WorkerInfo& w : r.workers()) {
            std::string state = v1::WorkerState_Name(w.state());
            if (state.starts_with("WORKER_STATE_")) state = state.substr(13);
            std::string tasks;
            for (const std::string& t : w.task_ids()) tasks += (tasks.empty() ? "" : ",") + t;
            std::cout << absl::StrFormat("%-8s  %-20s  %-9s  %9d  %6d  %s\n", w.worker_id(),
                                         w.hostname(), state, w.tasks_completed(),
                                         w.tasks_failed(), tasks);
          }
          return kExitOk;
        });
  });
}

}  // namespace

void RegisterServiceCommands(CLI::App& app, int* exit_code) {
  RegisterSubmit(app, exit_code);
  RegisterStatus(app, exit_code);
  RegisterWatch(app, exit_code);
  RegisterCancel(app, exit_code);
  RegisterList(app, exit_code);
  RegisterWorkers(app, exit_code);
}

}  // namespace glvq::cli
