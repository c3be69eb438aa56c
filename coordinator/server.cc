#include "coordinator/server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/rpc/grpc_util.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace glvq::coordinator {

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const std::string& listen, const SchedulerOptions& options,
    const rpc::ServerSecurity& security) {
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  ASSIGN_OR_RETURN(s->auth_, rpc::Authenticator::Load(security));
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (!listen.empty()) {
    ASSIGN_OR_RETURN(credentials, rpc::MakeServerCredentials(security, listen));
  }
  ASSIGN_OR_RETURN(s->scheduler_, Scheduler::Create(options));
  s->job_service_ = std::make_unique<JobServiceImpl>(s->scheduler_.get(), &s->auth_);
  s->worker_service_ = std::make_unique<WorkerServiceImpl>(s->scheduler_.get(), &s->auth_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  rpc::ConfigureServer(&builder);
  if (!listen.empty()) {
    builder.AddListeningPort(listen, credentials, &s->port_);
  }
  builder.RegisterService(s->job_service_.get());
  builder.RegisterService(s->worker_service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || (!listen.empty() && s->port_ == 0)) {
    s->scheduler_->Stop();
    return absl::FailedPreconditionError(absl::StrCat("cannot listen on ", listen));
  }
  return s;
}

CoordinatorServer::~CoordinatorServer() { Shutdown(absl::ZeroDuration()); }

std::shared_ptr<grpc::Channel> CoordinatorServer::InProcessChannel() {
  return server_->InProcessChannel(rpc::ChannelArgs());
}

void CoordinatorServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_ == nullptr) {  // Start failed part-way: nothing serves
    if (scheduler_ != nullptr) scheduler_->Stop();
    return;
  }
  // Waiting calls (long polls, watches) return first, then the server
  // drains the rest until the deadline.
  scheduler_->Stop();
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::nanoseconds(absl::ToInt64Nanoseconds(grace)));
  server_->Wait();
}

}  // namespace glvq::coordinator
