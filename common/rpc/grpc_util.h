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

// The message crosses as ErrorLine(status): one line of at most
// kMaxMessageBytes (common/base/one_line.h), so echoed client input can
// neither exceed gRPC's metadata limit nor break a line.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

google::protobuf::Timestamp ToProto(absl::Time t);
google::protobuf::Duration ToProto(absl::Duration d);
absl::Time FromProto(const google::protobuf::Timestamp& t);
absl::Duration FromProto(const google::protobuf::Duration& d);

// ---- transport limits, the same on every glvq channel and server --------
//
// Largest message either side sends or accepts. Bulk data travels in chunks
// of at most kMaxChunkData (4 MiB - 4 KiB, common/rpc/chunks.h), so only
// unchunked replies come near it: a ListJobs of thousands of jobs, or the
// header of a result with very many groups. A message over the limit fails
// the call with RESOURCE_EXHAUSTED ("... larger than max (N vs. 16777216)")
// on the side that would send or receive it.
inline constexpr int kMaxMessageBytes = 16 << 20;
// Clients ping an idle connection every kKeepaliveTime and drop it when the
// ack is kKeepaliveTimeout late, so a worker long-polling a coordinator
// whose machine vanished (no FIN, no RST) notices within ~40 s instead of
// waiting for its call deadline; pings continue without calls in flight.
inline constexpr absl::Duration kKeepaliveTime = absl::Seconds(30);
inline constexpr absl::Duration kKeepaliveTimeout = absl::Seconds(10);
// The server pings its clients as well (a watcher gone silent frees its
// stream), less often.
inline constexpr absl::Duration kServerKeepaliveTime = absl::Seconds(60);
// The server accepts client pings this often without data before it counts
// a strike (gRPC's default, 5 minutes, would close every idle worker's
// connection with GOAWAY too_many_pings): half the clients' interval.
inline constexpr absl::Duration kMinPingInterval = absl::Seconds(15);
// Threads a sync server keeps waiting for calls. With gRPC's default (2) a
// server with many concurrent calls (every worker's long poll) creates and
// destroys a thread per call; keeping more roughly halved the lease-grant
// p99 with 64 workers (glvq-bench scaling, docs/performance.md).
inline constexpr int kMaxIdleServerThreads = 64;

// Channel arguments for glvq's own channels: the limits above. The HTTP
// proxy is off: gRPC would otherwise send even loopback traffic to
// $http_proxy. Reconnect back-off is capped low so a restarted coordinator
// is found quickly.
grpc::ChannelArguments ChannelArgs();
// An insecure channel to "host:port" with ChannelArgs().
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);
// Applies the limits above to a server: message sizes both ways, keepalive
// pings to clients, and the ping policy that lets clients keep theirs.
void ConfigureServer(grpc::ServerBuilder* builder);

// Sets the deadline of `context` to now + `timeout`.
void SetTimeout(grpc::ClientContext* context, absl::Duration timeout);

}  // namespace glvq::rpc
