// Test helpers for the metrics: a minimal HTTP GET against loopback servers
// (a /metrics endpoint, Prometheus' HTTP API), a parser of the Prometheus
// text exposition format, and the metric names a PromQL expression uses.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/metrics/metrics_server.h"

namespace glvq::testing {

struct HttpResponse {
  int status = 0;  // 0: no answer (connection refused, timeout, bad reply)
  std::string body;
};

// GET http://127.0.0.1:<port><target> (HTTP/1.0, so the body ends at EOF).
HttpResponse HttpGet(int port, const std::string& target, double timeout_seconds = 10);
// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(const std::string& s);
// A TCP port on 127.0.0.1 that was free when asked (for a server that
// cannot pick its own, like Prometheus).
int FreeLoopbackPort();

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// One scrape in the text exposition format.
struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter, gauge, ...
  std::map<std::string, std::string> help;   // family -> help text
  std::vector<MetricSample> samples;

  // Sum of the samples called `name` whose labels include `labels`; 0 if none.
  double Sum(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  // Number of such samples.
  int Count(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
};

// Parses `text`; malformed lines are reported as test failures.
Exposition ParseExposition(const std::string& text);

// One metrics server per test binary on 127.0.0.1 (stopping one takes 2 s).
metrics::MetricsServer& SharedMetricsServer();

// Serves collectables on the shared server while in scope.
class ServedMetrics {
 public:
  explicit ServedMetrics(std::vector<std::shared_ptr<prometheus::Collectable>> collectables);
  ~ServedMetrics();
  ServedMetrics(const ServedMetrics&) = delete;
  ServedMetrics& operator=(const ServedMetrics&) = delete;

 private:
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
};

// A scrape of the shared server.
Exposition ScrapeShared();

// A scrape of an idle coordinator (state in `state_dir`) and a worker that
// has not started: every family either exports, none of them per job.
Exposition ScrapeIdleService(const std::filesystem::path& state_dir);

// The glvq_* metric names in a PromQL expression (or a Grafana
// `label_values(metric, label)` query), string literals skipped.
std::set<std::string> GlvqMetricNames(const std::string& expression);

}  // namespace glvq::testing
