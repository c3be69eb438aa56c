// The coordinator's event metrics: counters and histograms updated where
// things happen (leases, commits, failures, streams). The figures that are
// state (jobs, workers) are computed at scrape time by the scheduler
// (Scheduler::MetricsCollectables). Names, labels and units:
// docs/operations.md, "Metrics reference". Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/metrics/families.h"
#include "glvq/v1/task.pb.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace glvq::coordinator {

class CoordinatorMetrics {
 public:
  CoordinatorMetrics();

  void TaskLeased() { leases_->Increment(); }
  // A committed result: its compute time (by backend) and quality.
  void TaskCommitted(const v1::TaskResultHeader& header);
  // A lease that ran out: counted as an expiry and as a task failure.
  void LeaseExpired();
  // A failure a worker reported (`code` labels it).
  void TaskFailed(absl::StatusCode code);
  // A leased task put back in the queue (any reason).
  void TaskRetried() { retries_->Increment(); }
  void BytesStreamed(metrics::StreamDirection direction, uint64_t bytes);
  // A checked result the coordinator could not stage on its own disk.
  void StorageFailed() { storage_failures_->Increment(); }

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* leases_;
  prometheus::Counter* retries_;
  prometheus::Counter* expiries_;
  prometheus::Counter* expired_failures_;
  prometheus::Counter* storage_failures_;
  std::map<absl::StatusCode, prometheus::Counter*> reported_failures_;
  prometheus::Counter* fetch_bytes_;
  prometheus::Counter* upload_bytes_;
  std::map<std::string, prometheus::Histogram*> duration_by_backend_;
  prometheus::Histogram* proxy_loss_;
  prometheus::Histogram* sqnr_;
};

}  // namespace glvq::coordinator
