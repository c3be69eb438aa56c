// Building Prometheus metric families at scrape time, for figures that are
// state (jobs, workers) rather than events, and the label values that the
// coordinator and the workers share. Names and labels follow
// docs/operations.md, "Metrics reference".
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace glvq::metrics {

// A collectable whose families `callback` computes at each scrape. The
// callback runs on the metrics server's threads: whatever it reads must
// outlive its registration (MetricsServer::Unregister waits for a scrape
// in progress).
class CallbackCollectable : public prometheus::Collectable {
 public:
  using Callback = std::function<std::vector<prometheus::MetricFamily>()>;
  explicit CallbackCollectable(Callback callback) : callback_(std::move(callback)) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return callback_(); }

 private:
  Callback callback_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

// A family without samples; a scrape lists it (HELP and TYPE) even empty.
prometheus::MetricFamily Family(const std::string& name, const std::string& help,
                                prometheus::MetricType type);
// Appends a sample to a gauge or counter family.
void AddSample(prometheus::MetricFamily* family, const Labels& labels, double value);
// A gauge `name{label=...}` with one sample per value of `values`: 1 for
// `current`, 0 for the others (a state as a set of series that always exist).
prometheus::MetricFamily StateGauge(const std::string& name, const std::string& help,
                                    const std::string& label,
                                    const std::vector<std::string>& values,
                                    const std::string& current);

// The label value of a proto enum value: "JOB_STATE_RUNNING" with prefix
// "JOB_STATE_" gives "running".
std::string EnumLabel(const std::string& value_name, const std::string& prefix);

// Bulk data streamed over gRPC, in the label `direction`: "fetch" is model
// data sent to a worker (FetchTensor), "upload" a result sent to the
// coordinator (UploadResult).
enum class StreamDirection { kFetch, kUpload };
const char* DirectionLabel(StreamDirection direction);

}  // namespace glvq::metrics
