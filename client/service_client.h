// What the service commands of `glvq` share: the coordinator address,
// per-call deadlines, the exit codes of docs/service.md, JSON output, and
// the text form of a job.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>

#include "client/proto_json.h"
#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc/security.h"
#include "glvq/v1/services.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {

struct ServiceArgs {
  std::string coordinator;  // --coordinator, else $GLVQ_COORDINATOR
  std::string output = "text";
  double timeout_seconds = 30;
  rpc::ClientSecurity security;  // --tls-ca, --token-file, ... (docs/security.md)

  absl::Duration timeout() const { return absl::Seconds(timeout_seconds); }
  bool json() const { return output == "json"; }
};

// Adds --json (sets *output to "json"; the one spelling every glvq and
// glvq-bench command uses) and, hidden, the older `--output text|json`
// that scripts may still pass.
void AddJsonOutputFlag(CLI::App* cmd, std::string* output);
// Adds --coordinator, --json, --timeout and the TLS and token options to
// `cmd`.
void AddServiceOptions(CLI::App* cmd, ServiceArgs* args);
// --coordinator, $GLVQ_COORDINATOR, or 127.0.0.1:7070.
std::string CoordinatorAddress(const ServiceArgs& args);
// A stub on a channel with the configured security. FAILED_PRECONDITION
// for a plaintext non-loopback address without --insecure, unreadable
// certificate or token files.
absl::StatusOr<std::unique_ptr<v1::JobService::Stub>> JobStub(const ServiceArgs& args);
void SetDeadline(grpc::ClientContext* context, const ServiceArgs& args);

// UNAVAILABLE and DEADLINE_EXCEEDED: kExitUnavailable; anything else
// kExitBadInput.
int ExitCodeFor(const absl::Status& status);
// SUCCEEDED (and unfinished states) 0, FAILED 1, CANCELLED 3.
int ExitCodeFor(v1::JobState state);
// One line on stderr, or {"code", "message"} on stdout with --output json.
void PrintError(const ServiceArgs& args, const absl::Status& status);

// "RUNNING", "SUCCEEDED", ...
std::string StateName(v1::JobState state);
// A few lines: state, progress, quality, plan, error.
void PrintJob(const v1::Job& job, std::ostream& out);

}  // namespace glvq::cli
