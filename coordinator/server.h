// A running coordinator: the Scheduler behind a gRPC server with
// JobService, WorkerService, the standard health service and server
// reflection. Used by glvq-coordinator (TCP) and by embedded mode
// (in-process channels, `glvq quantize`): the same code path either way.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc/security.h"
#include "coordinator/job_service.h"
#include "coordinator/scheduler.h"
#include "coordinator/worker_service.h"
#include "grpcpp/grpcpp.h"

namespace glvq::coordinator {

class CoordinatorServer {
 public:
  // Starts serving on `listen` ("host:port"; port 0 picks a free one; empty:
  // in-process channels only) with the TLS and token settings of `security`
  // (docs/security.md). FAILED_PRECONDITION if it cannot bind or `security`
  // does not allow serving there (plaintext off loopback without
  // --insecure, unreadable certificate or token files).
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      const std::string& listen, const SchedulerOptions& options,
      const rpc::ServerSecurity& security = {});
  ~CoordinatorServer();

  int port() const { return port_; }
  Scheduler& scheduler() { return *scheduler_; }
  // A channel to this server that bypasses the network.
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // Stops taking work and ends in-flight calls after `grace`. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(2));

 private:
  CoordinatorServer() = default;

  rpc::Authenticator auth_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<JobServiceImpl> job_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace glvq::coordinator
