#include "glvq_version.h"
#include "common/metrics/metrics_server.h"

#include <exception>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "glvq_revision.h"
#include "prometheus/gauge.h"

namespace glvq::metrics {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, const std::string& component) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  try {
    // civetweb throws when it cannot bind.
    s->exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot serve metrics on ", listen, ": ", e.what()));
  }
  const std::vector<int> ports = s->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot serve metrics on ", listen));
  }
  s->port_ = ports.front();
  s->build_info_ = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("glvq_build_info")
      .Help("Always 1; the labels name the binary's component, version and git revision")
      .Register(*s->build_info_)
      .Add({{"component", component}, {"version", GLVQ_VERSION}, {"revision", GLVQ_REVISION}})
      .Set(1);
  s->exposer_->RegisterCollectable(s->build_info_);
  return s;
}

void MetricsServer::Register(const std::shared_ptr<prometheus::Collectable>& collectable) {
  exposer_->RegisterCollectable(collectable);
}

void MetricsServer::Unregister(const std::shared_ptr<prometheus::Collectable>& collectable) {
  exposer_->RemoveCollectable(collectable);
}

void AddMetricsOptions(CLI::App* app, MetricsFlags* flags) {
  app->add_option("--metrics-listen", flags->listen,
                  "host:port to serve Prometheus /metrics on (port 0: any free port; "
                  "default: no metrics)");
  app->add_option("--metrics-port-file", flags->port_file,
                  "write the bound metrics port to this file once serving")
      ->needs("--metrics-listen");
}

absl::StatusOr<std::unique_ptr<MetricsServer>> ServeMetrics(
    const std::string& listen, const std::string& component,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables,
    const std::string& port_file) {
  if (listen.empty()) return nullptr;
  ASSIGN_OR_RETURN(std::unique_ptr<MetricsServer> server, MetricsServer::Start(listen, component));
  for (const auto& c : collectables) server->Register(c);
  if (!port_file.empty()) {
    RETURN_IF_ERROR(AtomicWriteString(port_file, absl::StrCat(server->port(), "\n")));
  }
  return server;
}

}  // namespace glvq::metrics
