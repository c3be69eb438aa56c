#include "coordinator/metrics.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "common/rpc/grpc_util.h"

namespace glvq::coordinator {
namespace {

using prometheus::Histogram;

// Seconds, 10 ms to ~1.4 h: a task of a small model to a 70B MLP on a CPU.
const Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
  return *b;
}

// Relative proxy loss tr(dW H dWᵀ)/tr(W H Wᵀ): 4-bit methods land near
// 1e-3, 1-bit ones near 0.3.
const Histogram::BucketBoundaries& ProxyLossBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1};
  return *b;
}

// SQNR in dB: about 6 dB per bit of a scalar quantizer.
const Histogram::BucketBoundaries& SqnrBuckets() {
  static const auto* b = new Histogram::BucketBoundaries{
      0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20, 22.5, 25, 27.5, 30, 35, 40};
  return *b;
}

// "cpu" or "cuda" of a result's backend ("cpu", "cuda:<device>").
std::string BackendLabel(const std::string& backend) {
  return backend.substr(0, backend.find(':'));
}

}  // namespace

CoordinatorMetrics::CoordinatorMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  leases_ = &prometheus::BuildCounter()
                 .Name("glvq_task_leases_total")
                 .Help("Task leases granted to workers (first attempts and retries)")
                 .Register(r)
                 .Add({});
  retries_ = &prometheus::BuildCounter()
                  .Name("glvq_task_retries_total")
                  .Help("Leased tasks put back in the queue: expired leases, reported "
                        "failures, workers that left")
                  .Register(r)
                  .Add({});
  expiries_ = &prometheus::BuildCounter()
                   .Name("glvq_lease_expiries_total")
                   .Help("Task leases that expired without a result or a renewal")
                   .Register(r)
                   .Add({});
  storage_failures_ =
      &prometheus::BuildCounter()
           .Name("glvq_coordinator_storage_failures_total")
           .Help("Checked results the coordinator could not stage on its own disk (full, "
                 "read-only, ...); the workers keep them and upload again")
           .Register(r)
           .Add({});
  // Every reason exists from the start, so that rates and sums see zeros.
  auto& failures = prometheus::BuildCounter()
                       .Name("glvq_task_failures_total")
                       .Help("Task attempts counted as failed, by reason: lease_expired, or "
                             "the gRPC status code a worker reported")
                       .Register(r);
  expired_failures_ = &failures.Add({{"reason", "lease_expired"}});
  for (int c = 1; c <= static_cast<int>(absl::StatusCode::kUnauthenticated); ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    reported_failures_[code] =
        &failures.Add({{"reason", absl::AsciiStrToLower(absl::StatusCodeToString(code))}});
  }
  auto& bytes = prometheus::BuildCounter()
                    .Name("glvq_stream_bytes_total")
                    .Help("Chunk data streamed: fetch = model data sent to workers "
                          "(FetchTensor), upload = results received (UploadResult)")
                    .Register(r);
  fetch_bytes_ = &bytes.Add({{"direction", metrics::DirectionLabel(metrics::StreamDirection::kFetch)}});
  upload_bytes_ = &bytes.Add({{"direction", metrics::DirectionLabel(metrics::StreamDirection::kUpload)}});
  auto& duration = prometheus::BuildHistogram()
                       .Name("glvq_task_duration_seconds")
                       .Help("Compute time of committed tasks as their workers measured it "
                             "(inputs, quantization, encoding), by backend")
                       .Register(r);
  for (const char* backend : {"cpu", "cuda"}) {
    duration_by_backend_[backend] = &duration.Add({{"backend", backend}}, DurationBuckets());
  }
  proxy_loss_ = &prometheus::BuildHistogram()
                     .Name("glvq_task_proxy_loss_ratio")
                     .Help("Relative proxy loss tr(dW H dW^T)/tr(W H W^T) of committed tasks "
                           "(H = I without calibration)")
                     .Register(r)
                     .Add({}, ProxyLossBuckets());
  sqnr_ = &prometheus::BuildHistogram()
               .Name("glvq_task_sqnr_decibels")
               .Help("Signal to quantization noise ratio of committed tasks, in dB")
               .Register(r)
               .Add({}, SqnrBuckets());
}

void CoordinatorMetrics::TaskCommitted(const v1::TaskResultHeader& header) {
  const auto it = duration_by_backend_.find(BackendLabel(header.backend()));
  if (it != duration_by_backend_.end()) {
    it->second->Observe(absl::ToDoubleSeconds(rpc::FromProto(header.compute_time())));
  }
  // A lossless range has an infinite SQNR: no bucket tells anything about it.
  if (std::isfinite(header.quality().proxy_loss())) {
    proxy_loss_->Observe(header.quality().proxy_loss());
  }
  if (std::isfinite(header.quality().sqnr_db())) sqnr_->Observe(header.quality().sqnr_db());
}

void CoordinatorMetrics::LeaseExpired() {
  expiries_->Increment();
  expired_failures_->Increment();
}

void CoordinatorMetrics::TaskFailed(absl::StatusCode code) {
  const auto it = reported_failures_.find(code);
  if (it != reported_failures_.end()) it->second->Increment();
}

void CoordinatorMetrics::BytesStreamed(metrics::StreamDirection direction, uint64_t bytes) {
  (direction == metrics::StreamDirection::kFetch ? fetch_bytes_ : upload_bytes_)
      ->Increment(static_cast<double>(bytes));
}

}  // namespace glvq::coordinator
