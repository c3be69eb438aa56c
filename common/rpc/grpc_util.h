// Small bridges between gRPC, protobuf and absl used by every service
// binary: status codes, timestamps and durations, channels, deadlines.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/grpcpp.h"

namespace glvq::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

google::protobuf::Timestamp ToProto(absl::Time t);
google::protobuf::Duration ToProto(absl::Duration d);
absl::Time FromProto(const google::protobuf::Timestamp& t);
absl::Duration FromProto(const google::protobuf::Duration& d);

// Channel arguments for glvq's own channels. The HTTP proxy is off: gRPC
// would otherwise send even loopback traffic to $http_proxy. Reconnect
// back-off is capped low so a restarted coordinator is found quickly.
grpc::ChannelArguments ChannelArgs();
// An insecure channel to "host:port" with ChannelArgs().
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);

// Sets the deadline of `context` to now + `timeout`.
void SetTimeout(grpc::ClientContext* context, absl::Duration timeout);

}  // namespace glvq::rpc
