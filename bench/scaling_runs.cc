// The measurements of `glvq-bench scaling` (scaling.h).
#include <algorithm>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_service.h"
#include "bench/scaling.h"
#include "common/base/status_macros.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/rpc/chunks.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/result_codec.h"
#include "common/safetensors/writer.h"
#include "common/synthetic/example_model.h"
#include "worker/engine/quantizer.h"
#include "worker/service/task_inputs.h"

namespace glvq::bench {

namespace fs = std::filesystem;

absl::Status WriteLinearModel(const fs::path& dir, int count, int64_t rows, int64_t cols,
                              DType dtype) {
  std::vector<std::vector<std::byte>> data;
  std::vector<TensorToWrite> tensors;
  for (int i = 0; i < count; ++i) {
    LlmLikeWeightOptions w;
    w.rows = rows;
    w.cols = cols;
    w.seed = static_cast<uint64_t>(i + 1);
    const std::vector<float> values = MakeLlmLikeWeight(w);
    std::vector<std::byte>& bytes = data.emplace_back(values.size() * DTypeSize(dtype));
    RETURN_IF_ERROR(ConvertFromF32(values, dtype, bytes));
  }
  for (int i = 0; i < count; ++i) {
    tensors.push_back(
        {absl::StrCat("model.layers.", i, ".mlp.up_proj.weight"), dtype, {rows, cols}, data[i]});
  }
  fs::create_directories(dir);
  return WriteSafetensorsModel(dir, tensors);
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

namespace {

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

// A bench worker's --bench-stats file: "grant S" and "upload S" lines, in
// the order they happened. Each worker's first grant was a pull parked
// (long poll) before the job existed; only the later ones, made while tasks
// were pending, measure the grant.
void ReadBenchStats(const fs::path& path, std::vector<double>* grants,
                    std::vector<double>* uploads) {
  std::ifstream in(path);
  bool first_grant = true;
  std::string kind;
  for (double x; in >> kind >> x;) {
    if (kind == "upload") {
      uploads->push_back(x);
    } else if (!first_grant) {
      grants->push_back(x);
    }
    first_grant = first_grant && kind != "grant";
  }
}

}  // namespace

absl::StatusOr<std::vector<CpuRow>> RunCpuScaling(const ScalingOptions& o) {
  const fs::path model = o.work_dir / "cpu-model";
  ExampleModelOptions m;
  m.hidden = o.cpu_hidden;
  m.intermediate = o.cpu_hidden * 43 / 16;  // the example model's 688 / 256
  m.layers = o.cpu_layers;
  RETURN_IF_ERROR(WriteExampleModel(model, m));
  quant::QuantizerConfig q;  // the quickstart's job: GLVQ 2 bit, d = 8
  q.method = quant::Method::kGlvq;
  q.bits = 2;
  q.dim = 8;
  q.group_size = 128;
  std::vector<CpuRow> rows;
  for (int n : o.cpu_workers) {
    const fs::path dir = o.work_dir / absl::StrCat("cpu-", n);
    ASSIGN_OR_RETURN(auto service, BenchService::Start(o.bin_dir, dir));
    RETURN_IF_ERROR(service->StartWorkers(n, {"--threads", "1"}));
    // The fastest of `cpu_repeats` jobs: other load on the machine only
    // ever slows a run down.
    v1::Job job;
    JobTimes times;
    for (int rep = 0; rep < o.cpu_repeats; ++rep) {
      const absl::Time submitted = absl::Now();
      ASSIGN_OR_RETURN(job,
                       service->Submit(JobFor("cpu", model, dir / absl::StrCat("out-", rep), q)));
      ASSIGN_OR_RETURN(const JobTimes t, service->Follow(job.id(), submitted));
      if (rep == 0 || t.all_committed < times.all_committed) times = t;
    }
    CpuRow r;
    r.workers = n;
    r.tasks = static_cast<int>(job.status().plan().tasks());
    r.weights = job.status().plan().weights();
    r.seconds_committed = times.all_committed;
    r.seconds_done = times.done;
    r.mweights_per_s = static_cast<double>(r.weights) / times.all_committed / 1e6;
    r.speedup = rows.empty() ? 1 : rows.front().seconds_committed / times.all_committed;
    rows.push_back(r);
  }
  return rows;
}

absl::StatusOr<std::vector<CapacityRow>> RunCoordinatorCapacity(const ScalingOptions& o) {
  // Tiny RTN tasks: the engine's part is microseconds, the bench backend
  // pads every task to task_seconds.
  quant::QuantizerConfig q;
  q.method = quant::Method::kRtn;
  q.bits = 4;
  q.group_size = 32;
  std::vector<CapacityRow> rows;
  for (int n : o.bench_workers) {
    const fs::path dir = o.work_dir / absl::StrCat("bench-", n);
    const int tasks = o.rounds * n;
    RETURN_IF_ERROR(WriteLinearModel(dir / "model", tasks, 64, 128, DType::kF32));
    ASSIGN_OR_RETURN(auto service, BenchService::Start(o.bin_dir, dir));
    RETURN_IF_ERROR(service->StartWorkers(
        n, {"--threads", "1", "--backend", "bench", "--bench-task-seconds",
            absl::StrCat(o.task_seconds), "--bench-stats", (dir / "stats-{i}").string()}));
    ASSIGN_OR_RETURN(const double cpu_before, service->coordinator().CpuSeconds());
    const absl::Time submitted = absl::Now();
    ASSIGN_OR_RETURN(const v1::Job job,
                     service->Submit(JobFor("capacity", dir / "model", dir / "out", q)));
    ASSIGN_OR_RETURN(const JobTimes times, service->Follow(job.id(), submitted));
    ASSIGN_OR_RETURN(const double cpu_after, service->coordinator().CpuSeconds());
    RETURN_IF_ERROR(service->StopWorkers());  // writes the stats files
    std::vector<double> grants, uploads;
    for (int i = 0; i < n; ++i) {
      ReadBenchStats(dir / absl::StrCat("stats-", i), &grants, &uploads);
    }
    CapacityRow r;
    r.workers = n;
    r.tasks = tasks;
    r.seconds = times.done;
    r.ideal_seconds = o.rounds * o.task_seconds;
    r.tasks_per_s = tasks / times.done;
    r.grant_p50_ms = 1e3 * Quantile(grants, 0.5);
    r.grant_p99_ms = 1e3 * Quantile(grants, 0.99);
    r.upload_p50_ms = 1e3 * Quantile(uploads, 0.5);
    r.upload_p99_ms = 1e3 * Quantile(uploads, 0.99);
    r.wait_share = (Mean(grants) + Mean(uploads)) / o.task_seconds;
    r.coordinator_cpu_s = cpu_after - cpu_before;
    r.cpu_ms_per_task = 1e3 * r.coordinator_cpu_s / tasks;
    r.cpu_share = r.coordinator_cpu_s / times.done;
    rows.push_back(r);
  }
  return rows;
}

namespace {

// Times one FetchTensor stream of the task's weights, checked chunk by chunk
// as a worker does.
absl::StatusOr<double> TimeFetch(v1::WorkerService::Stub& stub, const v1::PullTaskResponse& p) {
  v1::FetchTensorRequest request;
  request.set_worker_id(p.lease().worker_id());
  request.set_lease_id(p.lease().lease_id());
  request.set_task_id(p.task().id());
  request.set_what(v1::FetchTensorRequest::WHAT_WEIGHTS);
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Minutes(5));
  const absl::Time start = absl::Now();
  auto reader = stub.FetchTensor(&context, request);
  rpc::ChunkReceiver receiver;
  v1::FetchTensorResponse message;
  while (reader->Read(&message)) {
    receiver.Reserve(message.total_bytes());
    RETURN_IF_ERROR(receiver.Add(message.chunk()));
  }
  RETURN_IF_ERROR(rpc::FromGrpcStatus(reader->Finish()));
  return absl::ToDoubleSeconds(absl::Now() - start);
}

// Times one UploadResult stream (header, then chunks of kMaxChunkData)
// until the coordinator answers; the outcome in `outcome`.
absl::StatusOr<double> TimeUpload(v1::WorkerService::Stub& stub, const rpc::EncodedResult& r,
                                  v1::UploadResultResponse::Outcome* outcome) {
  grpc::ClientContext context;
  rpc::SetTimeout(&context, absl::Minutes(5));
  const absl::Time start = absl::Now();
  v1::UploadResultResponse response;
  auto writer = stub.UploadResult(&context, &response);
  v1::UploadResultRequest message;
  *message.mutable_header() = r.header;
  writer->Write(message);
  rpc::ForEachChunk(rpc::AsBytes(r.payload), 0, [&](v1::Chunk& chunk) {
    message.mutable_chunk()->Swap(&chunk);
    return writer->Write(message);
  });
  writer->WritesDone();
  RETURN_IF_ERROR(rpc::FromGrpcStatus(writer->Finish()));
  *outcome = response.outcome();
  return absl::ToDoubleSeconds(absl::Now() - start);
}

absl::StatusOr<rpc::EncodedResult> Compute(const v1::PullTaskResponse& p) {
  ASSIGN_OR_RETURN(const quant::RangeData data, worker::ReadTaskInputs(p.task()));
  ASSIGN_OR_RETURN(quant::QuantizerConfig config,
                   jobspec::ToQuantizerConfig(p.task().quantizer()));
  config.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ASSIGN_OR_RETURN(const auto quantizer, engine::MakeQuantizer(config));
  ASSIGN_OR_RETURN(const quant::RangeResult result,
                   engine::QuantizeRange(*quantizer, engine::InputOf(data, p.task().tensor())));
  rpc::EncodedResult encoded = rpc::EncodeResult(p.task(), result);
  encoded.header.set_lease_id(p.lease().lease_id());
  encoded.header.set_worker_id(p.lease().worker_id());
  return encoded;
}

StreamRow Row(const std::string& what, uint64_t bytes, const std::vector<double>& seconds) {
  StreamRow r{what, bytes, static_cast<int>(seconds.size()), Quantile(seconds, 0.5), 0};
  r.mb_per_s = static_cast<double>(bytes) / r.median_s / 1e6;
  return r;
}

}  // namespace

absl::StatusOr<std::vector<StreamRow>> RunStreaming(const ScalingOptions& o) {
  const fs::path dir = o.work_dir / "stream";
  // Two tensors: the job stays RUNNING while the first one's result is
  // uploaded again and again.
  RETURN_IF_ERROR(WriteLinearModel(dir / "model", 2, o.stream_rows, o.stream_cols, DType::kBF16));
  ASSIGN_OR_RETURN(auto service, BenchService::Start(o.bin_dir, dir));
  quant::QuantizerConfig q;
  q.method = quant::Method::kRtn;
  q.bits = 8;
  q.group_size = 128;
  RETURN_IF_ERROR(service->Submit(JobFor("stream", dir / "model", dir / "out", q)).status());
  auto stub = v1::WorkerService::NewStub(service->channel());
  v1::RegisterWorkerResponse registered;
  {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Seconds(10));
    v1::RegisterWorkerRequest request;
    request.set_hostname("glvq-bench");
    RETURN_IF_ERROR(rpc::FromGrpcStatus(stub->RegisterWorker(&context, request, &registered)));
  }
  v1::PullTaskResponse leased;
  {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Seconds(30));
    v1::PullTaskRequest request;
    request.set_worker_id(registered.worker_id());
    *request.mutable_wait() = rpc::ToProto(absl::Seconds(5));
    RETURN_IF_ERROR(rpc::FromGrpcStatus(stub->PullTask(&context, request, &leased)));
    if (!leased.has_task()) return absl::InternalError("no task leased for the stream test");
  }
  std::vector<double> fetch, upload, commit;
  for (int i = 0; i < o.stream_repeats; ++i) {
    ASSIGN_OR_RETURN(const double s, TimeFetch(*stub, leased));
    fetch.push_back(s);
  }
  ASSIGN_OR_RETURN(const rpc::EncodedResult result, Compute(leased));
  v1::UploadResultResponse::Outcome outcome;
  ASSIGN_OR_RETURN(const double first, TimeUpload(*stub, result, &outcome));
  if (outcome != v1::UploadResultResponse::OUTCOME_COMMITTED) {
    return absl::InternalError("the first upload was not committed");
  }
  commit.push_back(first);
  for (int i = 0; i < o.stream_repeats; ++i) {
    ASSIGN_OR_RETURN(const double s, TimeUpload(*stub, result, &outcome));
    if (outcome != v1::UploadResultResponse::OUTCOME_ALREADY_COMMITTED) {
      return absl::InternalError("a repeated upload was not answered ALREADY_COMMITTED");
    }
    upload.push_back(s);
  }
  const uint64_t weight_bytes = static_cast<uint64_t>(o.stream_rows * o.stream_cols) * 2;
  return std::vector<StreamRow>{Row("fetch", weight_bytes, fetch),
                                Row("upload", result.payload.size(), upload),
                                Row("upload+commit", result.payload.size(), commit)};
}

}  // namespace glvq::bench
