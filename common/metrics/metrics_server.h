// A process's Prometheus endpoint: GET /metrics over HTTP (prometheus-cpp's
// Exposer) serving the collectables registered with it, plus
// glvq_build_info{component, version, revision} = 1. One per process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace CLI {
class App;
}

namespace glvq::metrics {

class MetricsServer {
 public:
  // Serves on `listen` ("host:port"; port 0 picks a free one). `component`
  // ("coordinator", "worker") labels glvq_build_info. FAILED_PRECONDITION
  // if it cannot listen there.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              const std::string& component);
  // Takes up to 2 s: civetweb's listener polls at that interval.
  ~MetricsServer() = default;

  int port() const { return port_; }
  // Serves `collectable` from now on. The server holds it weakly: the owner
  // keeps it alive, and must Unregister it before destroying what its
  // scrape reads.
  void Register(const std::shared_ptr<prometheus::Collectable>& collectable);
  // Stops serving it; a scrape in progress finishes first.
  void Unregister(const std::shared_ptr<prometheus::Collectable>& collectable);

 private:
  MetricsServer() = default;

  std::shared_ptr<prometheus::Registry> build_info_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// --metrics-listen and --metrics-port-file, as every binary spells them.
struct MetricsFlags {
  std::string listen;     // host:port; empty: no metrics
  std::string port_file;  // where to write the bound port
};
void AddMetricsOptions(CLI::App* app, MetricsFlags* flags);

// What a binary's --metrics-listen and --metrics-port-file do: nullptr when
// `listen` is empty; else a server serving `collectables` whose port is
// written to `port_file` (atomically) unless that is empty.
absl::StatusOr<std::unique_ptr<MetricsServer>> ServeMetrics(
    const std::string& listen, const std::string& component,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables,
    const std::string& port_file);

}  // namespace glvq::metrics
