#include "bench/bench_service.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/jobspec/job_spec.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/rpc/grpc_util.h"

namespace glvq::bench {
namespace fs = std::filesystem;

v1::QuantizationJob JobFor(const std::string& name, const fs::path& model, const fs::path& out,
                           const quant::QuantizerConfig& quantizer) {
  v1::QuantizationJob job;
  job.set_api_version(jobspec::kApiVersion);
  job.set_kind(jobspec::kKind);
  job.mutable_metadata()->set_name(name);
  v1::JobSpec& spec = *job.mutable_spec();
  spec.mutable_model()->set_path(model.string());
  spec.mutable_output()->set_path(out.string());
  *spec.mutable_quantizer() = jobspec::FromQuantizerConfig(quantizer);
  for (const std::string& p : jobspec::DefaultIncludePatterns())
    spec.mutable_tensors()->add_include(p);
  for (const std::string& p : jobspec::DefaultExcludePatterns())
    spec.mutable_tensors()->add_exclude(p);
  spec.mutable_workers()->set_backend(v1::BACKEND_CPU);
  return job;
}

fs::path OwnBinDir() { return fs::read_symlink("/proc/self/exe").parent_path(); }

absl::StatusOr<std::unique_ptr<BenchService>> BenchService::Start(
    const fs::path& bin_dir, const fs::path& dir,
    const std::vector<std::string>& coordinator_args) {
  std::unique_ptr<BenchService> s(new BenchService());
  s->bin_dir_ = bin_dir;
  s->dir_ = dir;
  s->coordinator_args_ = coordinator_args;
  fs::create_directories(dir);
  RETURN_IF_ERROR(s->StartCoordinator("127.0.0.1:0"));
  s->channel_ = rpc::MakeChannel(s->address_);
  s->jobs_ = v1::JobService::NewStub(s->channel_);
  return s;
}

absl::Status BenchService::StartCoordinator(const std::string& listen) {
  const fs::path port_file = dir_ / "port";
  fs::remove(port_file);
  std::vector<std::string> argv = {(bin_dir_ / "glvq-coordinator").string(), "--listen", listen,
                                   "--state-dir", (dir_ / "state").string(), "--port-file",
                                   port_file.string()};
  argv.insert(argv.end(), coordinator_args_.begin(), coordinator_args_.end());
  ASSIGN_OR_RETURN(coordinator_, process::ChildProcess::Start(argv, dir_ / "coordinator.log"));
  const int port = process::WaitForPortFile(port_file, absl::Seconds(30));
  if (port == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat("the coordinator did not start; see ", (dir_ / "coordinator.log").string()));
  }
  address_ = absl::StrCat("127.0.0.1:", port);
  return absl::OkStatus();
}

absl::Status BenchService::RestartCoordinator() {
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(absl::Seconds(10));
  return StartCoordinator(address_);
}

BenchService::~BenchService() {
  (void)StopWorkers();
  // An open connection holds the coordinator's shutdown for its grace time.
  jobs_.reset();
  channel_.reset();
  coordinator_->Signal(SIGTERM);
  coordinator_->Wait(absl::Seconds(10));
}

absl::Status BenchService::StartWorker(int index) {
  std::vector<std::string> argv = {(bin_dir_ / "glvq-worker").string(), "--coordinator", address_};
  for (const std::string& a : worker_args_) {
    argv.push_back(absl::StrReplaceAll(a, {{"{i}", std::to_string(workers_started_)}}));
  }
  ++workers_started_;
  ASSIGN_OR_RETURN(workers_[index], process::ChildProcess::Start(argv, dir_ / "workers.log"));
  return absl::OkStatus();
}

absl::Status BenchService::ReplaceWorker(int index) {
  workers_[index]->Signal(SIGKILL);
  workers_[index]->Wait(absl::Seconds(10));
  return StartWorker(index);
}

absl::Status BenchService::StartWorkers(int n, const std::vector<std::string>& extra) {
  const size_t before = workers_.size();
  worker_args_ = extra;
  workers_.resize(before + n);
  for (int i = 0; i < n; ++i) RETURN_IF_ERROR(StartWorker(static_cast<int>(before) + i));
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Seconds(10));
    v1::ListWorkersResponse response;
    if (jobs_->ListWorkers(&context, v1::ListWorkersRequest(), &response).ok() &&
        static_cast<size_t>(response.workers_size()) == before + n) {
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(n, " workers did not register; see ", (dir_ / "workers.log").string()));
}

absl::Status BenchService::StopWorkers() {
  // A slot is empty only where a start failed.
  for (auto& w : workers_) {
    if (w) w->Signal(SIGTERM);
  }
  int failed = 0;
  for (auto& w : workers_) failed += w && w->Wait(absl::Seconds(60)) != 0;
  workers_.clear();
  if (failed > 0) {
    return absl::InternalError(absl::StrCat(failed, " workers did not exit cleanly; see ",
                                            (dir_ / "workers.log").string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> BenchService::Submit(const v1::QuantizationJob& job) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Minutes(2));
  v1::SubmitJobRequest request;
  *request.mutable_job() = job;
  v1::SubmitJobResponse response;
  RETURN_IF_ERROR(rpc::FromGrpcStatus(jobs_->SubmitJob(&context, request, &response)));
  return response.job();
}

absl::StatusOr<JobTimes> BenchService::Follow(const std::string& job_id, absl::Time submitted) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Hours(1));
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  auto reader = jobs_->WatchJob(&context, request);
  JobTimes times;
  v1::JobEvent event;
  while (reader->Read(&event)) {
    const double now = absl::ToDoubleSeconds(absl::Now() - submitted);
    if (event.state() == v1::JOB_STATE_FINALIZING && times.all_committed == 0) {
      times.all_committed = now;
    }
    if (event.state() == v1::JOB_STATE_SUCCEEDED) {
      times.done = now;
      if (times.all_committed == 0) times.all_committed = now;
    } else if (event.state() == v1::JOB_STATE_FAILED || event.state() == v1::JOB_STATE_CANCELLED) {
      return absl::InternalError(absl::StrCat("job ", job_id, " ", v1::JobState_Name(event.state()),
                                              ": ", event.message()));
    }
  }
  RETURN_IF_ERROR(rpc::FromGrpcStatus(reader->Finish()));
  if (times.done == 0) return absl::InternalError(absl::StrCat("job ", job_id, " did not end"));
  return times;
}

absl::StatusOr<v1::Job> BenchService::GetJob(const std::string& job_id) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(5));
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  RETURN_IF_ERROR(rpc::FromGrpcStatus(jobs_->GetJob(&context, request, &job)));
  return job;
}

}  // namespace glvq::bench
