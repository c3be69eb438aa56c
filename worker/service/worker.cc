#include "worker/service/worker.h"

#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/logging.h"
#include "common/base/machine.h"
#include "common/base/status_macros.h"
#include "common/jobspec/quantizer_spec.h"
#include "glvq_version.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/result_codec.h"
#include "worker/engine/quantizer.h"
#include "worker/service/task_inputs.h"

namespace glvq::worker {
namespace {

// Quantizes on the worker's backend; `*label` names the engine that ran.
// A CUDA task that does not fit in device memory even in the engine's
// smallest batches (RESOURCE_EXHAUSTED) runs on the CPU engine instead:
// slower, never a crash or a failed task.
absl::StatusOr<quant::RangeResult> Quantize(const v1::Task& task, const quant::RangeData& data,
                                             const WorkerOptions& options, std::string* label) {
  ASSIGN_OR_RETURN(quant::QuantizerConfig config, jobspec::ToQuantizerConfig(task.quantizer()));
  if (options.threads > 0) config.threads = options.threads;
  ASSIGN_OR_RETURN(const auto quantizer, MakeBackendQuantizer(options.backend, config, label));
  absl::StatusOr<quant::RangeResult> result =
      engine::QuantizeRange(*quantizer, engine::InputOf(data, task.tensor()));
  if (result.ok() || result.status().code() != absl::StatusCode::kResourceExhausted ||
      *label == "cpu") {
    return result;
  }
  GLVQ_LOG(kWarn) << "task " << task.id() << ": " << result.status()
                  << "; running it on the CPU engine";
  ASSIGN_OR_RETURN(const auto cpu, MakeBackendQuantizer(EngineBackend{}, config, label));
  return engine::QuantizeRange(*cpu, engine::InputOf(data, task.tensor()));
}

}  // namespace

v1::Capabilities LocalCapabilities(const WorkerOptions& options) {
  v1::Capabilities caps;
  caps.set_backend(options.backend.backend);
  for (const v1::GpuInfo& gpu : options.backend.gpus) *caps.add_gpus() = gpu;
  // The container's limits (cgroup v2), not the node's: common/base/machine.h.
  caps.set_memory_bytes(options.memory_bytes != 0 ? options.memory_bytes : UsableMemoryBytes());
  caps.set_cpu_threads(static_cast<uint32_t>(UsableCores()));
  caps.set_slots(1);
  for (quant::Method m : quant::kAllMethods) caps.add_methods(jobspec::FromEngineMethod(m));
  for (const std::string& p : options.shared_paths) caps.add_shared_paths(p);
  caps.set_version("glvq " GLVQ_VERSION);
  return caps;
}

Worker::Worker(std::shared_ptr<grpc::Channel> channel, WorkerOptions options)
    : channel_(std::move(channel)),
      stub_(v1::WorkerService::NewStub(channel_)),
      options_(std::move(options)),
      state_metrics_(std::make_shared<metrics::CallbackCollectable>(
          [this] { return StateMetrics(); })) {}

Worker::~Worker() {
  Stop();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void Worker::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  if (pull_context_ != nullptr) pull_context_->TryCancel();
  cv_.notify_all();
}

absl::Status Worker::Register() {
  v1::RegisterWorkerRequest request;
  request.set_hostname(options_.hostname);
  *request.mutable_capabilities() = LocalCapabilities(options_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    request.set_previous_worker_id(worker_id_);
  }
  grpc::ClientContext context;
  rpc::SetTimeout(&context, options_.rpc_timeout);
  v1::RegisterWorkerResponse response;
  RETURN_IF_ERROR(rpc::FromGrpcStatus(stub_->RegisterWorker(&context, request, &response)));
  std::lock_guard<std::mutex> lock(mu_);
  worker_id_ = response.worker_id();
  heartbeat_interval_ = std::max(absl::Milliseconds(50),
                                 rpc::FromProto(response.heartbeat_interval()));
  GLVQ_LOG(kInfo) << "registered as " << worker_id_;
  return absl::OkStatus();
}

absl::Status Worker::Run() {
  // Register, waiting for the coordinator to come up. Retried every
  // 500 ms, but logged at attempts 1, 2, 4, 8, ...: a worker started before
  // its coordinator must not fill the log.
  for (uint64_t attempt = 1;; ++attempt) {
    absl::Status s = Register();
    if (s.ok()) break;
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return absl::OkStatus();
    if ((attempt & (attempt - 1)) == 0) {
      GLVQ_LOG(kWarn) << "cannot register (attempt " << attempt << ", retrying every 0.5 s): "
                      << s;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(500));
  }
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    absl::StatusOr<std::optional<Current>> pulled = Pull();
    if (!pulled.ok()) {
      if (pulled.status().code() == absl::StatusCode::kNotFound) (void)Register();
      std::unique_lock<std::mutex> lock(mu_);
      if (!stopping_) cv_.wait_for(lock, std::chrono::milliseconds(300));
      continue;
    }
    if (*pulled) RunTask(**pulled);
  }
  v1::DeregisterWorkerRequest request;
  {
    std::lock_guard<std::mutex> lock(mu_);
    request.set_worker_id(worker_id_);
  }
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Seconds(5));
  v1::DeregisterWorkerResponse response;
  (void)stub_->DeregisterWorker(&context, request, &response);
  cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Worker::Current>> Worker::Pull() {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, options_.pull_wait + options_.rpc_timeout);
  v1::PullTaskRequest request;
  *request.mutable_wait() = rpc::ToProto(options_.pull_wait);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return std::optional<Current>();
    request.set_worker_id(worker_id_);
    pull_context_ = &context;
  }
  v1::PullTaskResponse response;
  const absl::Time sent = absl::Now();
  const grpc::Status status = stub_->PullTask(&context, request, &response);
  const absl::Duration round_trip = absl::Now() - sent;
  std::lock_guard<std::mutex> lock(mu_);
  pull_context_ = nullptr;
  if (stopping_ && status.error_code() == grpc::StatusCode::CANCELLED) {
    return std::optional<Current>();
  }
  RETURN_IF_ERROR(rpc::FromGrpcStatus(status));
  if (!response.has_task()) return std::optional<Current>();
  if (options_.bench_task_time > absl::ZeroDuration()) {
    bench_stats_.grant_seconds.push_back(absl::ToDoubleSeconds(round_trip));
  }
  current_ = Current{response.task(), response.lease(), false};
  return current_;
}

bool Worker::Revoked() {
  std::lock_guard<std::mutex> lock(mu_);
  return current_ && current_->revoked;
}

void Worker::RunTask(const Current& current) {
  const v1::Task& task = current.task;
  GLVQ_LOG(kInfo) << "task " << task.id() << " (" << task.tensor() << ") attempt "
                  << task.attempt();
  const absl::Time start = absl::Now();
  if (options_.task_delay > absl::ZeroDuration()) absl::SleepFor(options_.task_delay);
  uint64_t fetched_bytes = 0;
  absl::StatusOr<quant::RangeData> data =
      CanReadDirectly(task.source().file(), options_.shared_paths) &&
              (!task.has_hessian() ||
               CanReadDirectly(task.hessian().file(), options_.shared_paths))
          ? ReadTaskInputs(task)
          : FetchTaskInputs(*stub_, current.lease.worker_id(), current.lease, task,
                            &fetched_bytes);
  metrics_.BytesStreamed(metrics::StreamDirection::kFetch, fetched_bytes);
  std::string backend_label;
  absl::StatusOr<quant::RangeResult> result =
      data.ok() ? Quantize(task, *data, options_, &backend_label) : data.status();
  WorkerMetrics::Outcome outcome = WorkerMetrics::Outcome::kDropped;
  if (!result.ok()) {
    ReportFailure(current, result.status());
    outcome = WorkerMetrics::Outcome::kFailed;
  } else if (!Revoked()) {
    rpc::EncodedResult encoded = rpc::EncodeResult(task, *result);
    encoded.header.set_lease_id(current.lease.lease_id());
    encoded.header.set_worker_id(current.lease.worker_id());
    *encoded.header.mutable_compute_time() = rpc::ToProto(absl::Now() - start);
    encoded.header.set_backend(backend_label);
    if (options_.bench_task_time > absl::ZeroDuration()) {
      absl::SleepFor(start + options_.bench_task_time - absl::Now());
      encoded.header.set_backend("bench");
    }
    const absl::Time upload_start = absl::Now();
    if (absl::Status s = Upload(encoded.header, encoded.payload); s.ok()) {
      outcome = WorkerMetrics::Outcome::kCommitted;
      if (options_.bench_task_time > absl::ZeroDuration()) {
        bench_stats_.upload_seconds.push_back(absl::ToDoubleSeconds(absl::Now() - upload_start));
      }
    } else {
      GLVQ_LOG(kWarn) << "task " << task.id() << ": upload failed: " << s;
      if (s.code() == absl::StatusCode::kDataLoss || s.code() == absl::StatusCode::kUnavailable) {
        ReportFailure(current, s);
        outcome = WorkerMetrics::Outcome::kFailed;
      }
    }
  }
  metrics_.TaskFinished(outcome, task.weights());
  std::lock_guard<std::mutex> lock(mu_);
  current_.reset();
}

absl::Status Worker::Upload(const v1::TaskResultHeader& header, const std::string& payload) {
  absl::Status last;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Minutes(10));
    v1::UploadResultResponse response;
    auto writer = stub_->UploadResult(&context, &response);
    v1::UploadResultRequest message;
    *message.mutable_header() = header;
    bool sent = writer->Write(message);
    sent = sent && rpc::ForEachChunk(
                       rpc::AsBytes(payload), 0,
                       [&](v1::Chunk& chunk) {
                         message.mutable_chunk()->Swap(&chunk);
                         if (!writer->Write(message)) return false;
                         metrics_.BytesStreamed(metrics::StreamDirection::kUpload,
                                                message.chunk().data().size());
                         return true;
                       },
                       options_.chunk_bytes);
    writer->WritesDone();
    last = rpc::FromGrpcStatus(writer->Finish());
    if (last.ok()) return last;
    // DATA_LOSS: a chunk was damaged on the way; UNAVAILABLE: the
    // coordinator is restarting, or cannot stage results on its own disk
    // (full, read-only). Both are worth another try; the second for as long
    // as the lease holds (heartbeats keep it) and the worker is not told to
    // stop, so that the result is kept until space returns.
    const bool retryable = last.code() == absl::StatusCode::kDataLoss ||
                           last.code() == absl::StatusCode::kUnavailable;
    if (!retryable) return last;
    if (attempt + 1 < options_.upload_attempts) {
      absl::SleepFor(absl::Milliseconds(200) * (attempt + 1));
      continue;
    }
    if (last.code() != absl::StatusCode::kUnavailable) return last;
    if (attempt + 1 == options_.upload_attempts) {
      GLVQ_LOG(kWarn) << "task " << header.task_id() << ": " << last
                      << "; keeping the result and uploading again while the lease holds";
    }
    if (!WaitBeforeRetry(attempt)) return last;
  }
}

bool Worker::WaitBeforeRetry(int attempt) {
  const absl::Duration backoff =
      std::min(absl::Milliseconds(200) * (int64_t{1} << std::min(attempt, 8)), absl::Seconds(30));
  std::unique_lock<std::mutex> lock(mu_);
  const auto give_up = [this] { return stopping_ || (current_ && current_->revoked); };
  cv_.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(backoff)), give_up);
  return !give_up();
}

void Worker::ReportFailure(const Current& current, const absl::Status& status) {
  GLVQ_LOG(kWarn) << "task " << current.task.id() << " failed: " << status;
  v1::ReportTaskFailureRequest request;
  request.set_worker_id(current.lease.worker_id());
  request.set_lease_id(current.lease.lease_id());
  request.set_task_id(current.task.id());
  request.set_attempt(current.task.attempt());
  request.set_code(static_cast<int>(status.code()));
  request.set_message(std::string(status.message()));
  grpc::ClientContext context;
  rpc::SetTimeout(&context, options_.rpc_timeout);
  v1::ReportTaskFailureResponse response;
  (void)stub_->ReportTaskFailure(&context, request, &response);
}

void Worker::HeartbeatLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  // After Stop() the loop keeps the in-flight lease alive until Run ends.
  const auto done = [this] { return stopping_ && !current_; };
  while (true) {
    // The predicate is checked before blocking: a notify sent while this
    // thread was in SendHeartbeat is not lost (it once cost a whole
    // heartbeat interval, ~100 s, at shutdown).
    if (cv_.wait_for(lock, std::chrono::nanoseconds(absl::ToInt64Nanoseconds(heartbeat_interval_)),
                     done)) {
      return;
    }
    lock.unlock();
    SendHeartbeat();
    lock.lock();
  }
}

void Worker::SendHeartbeat() {
  v1::HeartbeatRequest request;
  {
    std::lock_guard<std::mutex> lock(mu_);
    request.set_worker_id(worker_id_);
    request.set_state(stopping_  ? v1::WORKER_STATE_DRAINING
                      : current_ ? v1::WORKER_STATE_BUSY
                                 : v1::WORKER_STATE_IDLE);
    if (current_) {
      v1::LeaseProgress* held = request.add_leases();
      held->set_lease_id(current_->lease.lease_id());
      held->set_task_id(current_->task.id());
      held->set_attempt(current_->task.attempt());
    }
  }
  grpc::ClientContext context;
  rpc::SetTimeout(&context, options_.rpc_timeout);
  v1::HeartbeatResponse response;
  if (!stub_->Heartbeat(&context, request, &response).ok()) return;
  if (response.reregister()) {
    (void)Register();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : response.revoked_lease_ids()) {
    if (current_ && current_->lease.lease_id() == id) current_->revoked = true;
  }
}

std::vector<std::shared_ptr<prometheus::Collectable>> Worker::MetricsCollectables() {
  return {metrics_.registry(), state_metrics_};
}

std::vector<prometheus::MetricFamily> Worker::StateMetrics() {
  std::string state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = stopping_            ? "draining"
            : worker_id_.empty() ? "registering"
            : current_           ? "busy"
                                 : "idle";
  }
  prometheus::MetricFamily gpu = metrics::Family(
      "glvq_worker_gpu_memory_used_bytes",
      "device memory in use on the worker's GPUs, all devices (0 on the CPU backend)",
      prometheus::MetricType::Gauge);
  metrics::AddSample(&gpu, {}, static_cast<double>(GpuMemoryInUse(options_.backend)));
  return {metrics::StateGauge("glvq_worker_state",
                              "1 for the worker's current state: registering (no coordinator "
                              "reached yet), idle, busy (a task in flight), draining",
                              "state", {"registering", "idle", "busy", "draining"}, state),
          std::move(gpu)};
}

}  // namespace glvq::worker
