#include "worker/service/worker_metrics.h"

namespace glvq::worker {

WorkerMetrics::WorkerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  auto& tasks = prometheus::BuildCounter()
                    .Name("glvq_worker_tasks_total")
                    .Help("Tasks this worker ran, by outcome: committed, failed (reported), "
                          "dropped (lease revoked or upload refused)")
                    .Register(r);
  committed_ = &tasks.Add({{"outcome", "committed"}});
  failed_ = &tasks.Add({{"outcome", "failed"}});
  dropped_ = &tasks.Add({{"outcome", "dropped"}});
  weights_ = &prometheus::BuildCounter()
                  .Name("glvq_worker_weights_total")
                  .Help("Weights of this worker's committed tasks")
                  .Register(r)
                  .Add({});
  auto& bytes = prometheus::BuildCounter()
                    .Name("glvq_worker_stream_bytes_total")
                    .Help("Chunk data this worker streamed: fetch = model data received "
                          "(FetchTensor), upload = results sent (UploadResult)")
                    .Register(r);
  fetch_bytes_ = &bytes.Add({{"direction", metrics::DirectionLabel(metrics::StreamDirection::kFetch)}});
  upload_bytes_ =
      &bytes.Add({{"direction", metrics::DirectionLabel(metrics::StreamDirection::kUpload)}});
}

void WorkerMetrics::TaskFinished(Outcome outcome, uint64_t weights) {
  switch (outcome) {
    case Outcome::kCommitted:
      committed_->Increment();
      weights_->Increment(static_cast<double>(weights));
      break;
    case Outcome::kFailed:
      failed_->Increment();
      break;
    case Outcome::kDropped:
      dropped_->Increment();
      break;
  }
}

void WorkerMetrics::BytesStreamed(metrics::StreamDirection direction, uint64_t bytes) {
  (direction == metrics::StreamDirection::kFetch ? fetch_bytes_ : upload_bytes_)
      ->Increment(static_cast<double>(bytes));
}

}  // namespace glvq::worker
