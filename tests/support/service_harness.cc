#include "tests/support/service_harness.h"

#include <fstream>
#include <sstream>

#include "absl/time/clock.h"
#include "common/jobspec/job_spec.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/rpc/chunks.h"
#include "common/rpc/grpc_util.h"
#include "worker/engine/quantizer.h"
#include "worker/service/task_inputs.h"

namespace glvq::testing {

v1::QuantizationJob Stories260KJob(const std::filesystem::path& model,
                                   const std::filesystem::path& out,
                                   uint64_t max_task_memory_bytes) {
  v1::QuantizationJob job;
  job.set_api_version(jobspec::kApiVersion);
  job.set_kind(jobspec::kKind);
  job.mutable_metadata()->set_name("stories");
  v1::JobSpec& spec = *job.mutable_spec();
  spec.mutable_model()->set_path(model.string());
  spec.mutable_output()->set_path(out.string());
  // The paper preset's tuning (no RHT): tensors split under a memory budget.
  quant::QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = quant::Method::kRtn;
  c.bits = 4;
  c.dim = 1;
  c.group_size = 16;
  *spec.mutable_quantizer() = jobspec::FromQuantizerConfig(c);
  for (const std::string& p : jobspec::DefaultIncludePatterns()) {
    spec.mutable_tensors()->add_include(p);
  }
  for (const std::string& p : jobspec::DefaultExcludePatterns()) {
    spec.mutable_tensors()->add_exclude(p);
  }
  spec.mutable_workers()->set_backend(v1::BACKEND_AUTO);
  if (max_task_memory_bytes != 0) {
    spec.mutable_workers()->set_max_task_memory_bytes(max_task_memory_bytes);
  }
  return job;
}

void WriteJobYaml(const v1::QuantizationJob& job, const std::filesystem::path& path) {
  const v1::JobSpec& s = job.spec();
  std::ostringstream y;
  y << "apiVersion: glvq.io/v1\nkind: QuantizationJob\nmetadata: {name: "
    << job.metadata().name() << "}\nspec:\n"
    << "  model: {path: " << s.model().path() << "}\n"
    << "  output: {path: " << s.output().path() << "}\n"
    << "  quantizer: {method: rtn, bits: " << s.quantizer().bits()
    << ", groupSize: " << s.quantizer().group_size() << ", preset: paper}\n";
  if (s.workers().max_task_memory_bytes() != 0) {
    y << "  workers: {maxTaskMemoryBytes: " << s.workers().max_task_memory_bytes() << "}\n";
  }
  std::ofstream(path) << y.str();
}

ServiceHarness::ServiceHarness(const std::filesystem::path& state_dir, absl::Duration lease,
                               uint32_t max_attempts) {
  coordinator::SchedulerOptions options;
  options.state_dir = state_dir;
  options.lease_duration = lease;
  options.max_attempts = max_attempts;
  options.sweep_interval = absl::Milliseconds(50);
  auto server = coordinator::CoordinatorServer::Start("127.0.0.1:0", options);
  if (!server.ok()) throw std::runtime_error(server.status().ToString());
  server_ = *std::move(server);
  channel_ = rpc::MakeChannel(address());
  jobs_ = v1::JobService::NewStub(channel_);
}

ServiceHarness::~ServiceHarness() { Shutdown(); }

std::string ServiceHarness::address() const {
  return "127.0.0.1:" + std::to_string(server_->port());
}

absl::StatusOr<std::string> ServiceHarness::Submit(const v1::QuantizationJob& job) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(30));
  v1::SubmitJobRequest request;
  *request.mutable_job() = job;
  v1::SubmitJobResponse response;
  const absl::Status s = rpc::FromGrpcStatus(jobs_->SubmitJob(&context, request, &response));
  if (!s.ok()) return s;
  return response.job().id();
}

absl::StatusOr<v1::Job> ServiceHarness::Get(const std::string& id) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(10));
  v1::GetJobRequest request;
  request.set_job_id(id);
  v1::Job job;
  const absl::Status s = rpc::FromGrpcStatus(jobs_->GetJob(&context, request, &job));
  if (!s.ok()) return s;
  return job;
}

v1::Job ServiceHarness::WaitDone(const std::string& id, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  v1::Job job;
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::Job> j = Get(id);
    if (j.ok()) {
      job = *j;
      if (coordinator::IsTerminal(job.status().state())) break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return job;
}

void ServiceHarness::StartWorker(worker::WorkerOptions options) {
  options.hostname = "test";
  options.pull_wait = absl::Milliseconds(300);
  workers_.push_back(std::make_unique<worker::Worker>(channel_, options));
  threads_.emplace_back([w = workers_.back().get()] { (void)w->Run(); });
}

void ServiceHarness::StopWorkers() {
  for (auto& w : workers_) w->Stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  workers_.clear();
}

void ServiceHarness::Shutdown() {
  StopWorkers();
  if (server_) server_->Shutdown(absl::Milliseconds(500));
  server_.reset();  // releases the state dir, as a stopped process would
}

RawWorker::RawWorker(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::WorkerService::NewStub(channel)) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(10));
  v1::RegisterWorkerRequest request;
  request.set_hostname("raw");
  v1::RegisterWorkerResponse response;
  if (stub_->RegisterWorker(&context, request, &response).ok()) id_ = response.worker_id();
}

std::optional<v1::PullTaskResponse> RawWorker::Pull(absl::Duration wait) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, wait + absl::Seconds(10));
  v1::PullTaskRequest request;
  request.set_worker_id(id_);
  *request.mutable_wait() = rpc::ToProto(wait);
  v1::PullTaskResponse response;
  if (!stub_->PullTask(&context, request, &response).ok() || !response.has_task()) {
    return std::nullopt;
  }
  return response;
}

rpc::EncodedResult RawWorker::Compute(const v1::PullTaskResponse& leased) {
  const v1::Task& task = leased.task();
  auto data = worker::ReadTaskInputs(task);
  auto config = jobspec::ToQuantizerConfig(task.quantizer());
  auto quantizer = engine::MakeQuantizer(*config);
  auto result = engine::QuantizeRange(**quantizer, engine::InputOf(*data, task.tensor()));
  rpc::EncodedResult encoded = rpc::EncodeResult(task, *result);
  encoded.header.set_lease_id(leased.lease().lease_id());
  encoded.header.set_worker_id(id_);
  return encoded;
}

grpc::Status RawWorker::Upload(const rpc::EncodedResult& result,
                               v1::UploadResultResponse* response, bool corrupt,
                               size_t chunk_bytes) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(30));
  auto writer = stub_->UploadResult(&context, response);
  v1::UploadResultRequest message;
  *message.mutable_header() = result.header;
  writer->Write(message);
  int index = 0;
  rpc::ForEachChunk(
      rpc::AsBytes(result.payload), 0,
      [&](const v1::Chunk& chunk) {
        *message.mutable_chunk() = chunk;
        if (corrupt && index++ == 1) message.mutable_chunk()->set_crc32c(chunk.crc32c() ^ 1);
        return writer->Write(message);
      },
      chunk_bytes);
  writer->WritesDone();
  return writer->Finish();
}

grpc::Status RawWorker::ReportFailure(const v1::PullTaskResponse& leased, absl::StatusCode code,
                                      const std::string& message) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(10));
  v1::ReportTaskFailureRequest request;
  request.set_worker_id(id_);
  request.set_lease_id(leased.lease().lease_id());
  request.set_task_id(leased.task().id());
  request.set_attempt(leased.task().attempt());
  request.set_code(static_cast<int>(code));
  request.set_message(message);
  v1::ReportTaskFailureResponse response;
  return stub_->ReportTaskFailure(&context, request, &response);
}

std::map<std::string, std::string> ReadTree(const std::filesystem::path& dir) {
  std::map<std::string, std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    out[std::filesystem::relative(e.path(), dir).string()] = s.str();
  }
  return out;
}

}  // namespace glvq::testing
