// A worker's event metrics (glvq_worker_*): tasks by outcome, weights
// committed, bytes streamed. Its state and GPU memory are computed at
// scrape time (Worker::MetricsCollectables). Names, labels and units:
// docs/operations.md, "Metrics reference". Thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include "common/metrics/families.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace glvq::worker {

class WorkerMetrics {
 public:
  // What became of a task this worker leased.
  enum class Outcome {
    kCommitted,  // its result was accepted (or was already committed)
    kFailed,     // reported to the coordinator as failed
    kDropped,    // lease revoked, or the upload refused for good: result unused
  };

  WorkerMetrics();
  // `weights` counts towards glvq_worker_weights_total when committed.
  void TaskFinished(Outcome outcome, uint64_t weights);
  void BytesStreamed(metrics::StreamDirection direction, uint64_t bytes);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* committed_;
  prometheus::Counter* failed_;
  prometheus::Counter* dropped_;
  prometheus::Counter* weights_;
  prometheus::Counter* fetch_bytes_;
  prometheus::Counter* upload_bytes_;
};

}  // namespace glvq::worker
