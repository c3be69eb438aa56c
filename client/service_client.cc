#include "client/service_client.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "common/base/one_line.h"
#include "common/base/status_macros.h"
#include "common/rpc/grpc_util.h"

namespace glvq::cli {

void AddJsonOutputFlag(CLI::App* cmd, std::string* output) {
  cmd->add_flag_callback("--json", [output] { *output = "json"; }, "Print JSON instead of text");
  cmd->add_option("--output", *output, "Output format (text or json; same as --json)")
      ->check(CLI::IsMember({"text", "json"}))
      ->group("");  // hidden: --json is the documented spelling
}

void AddServiceOptions(CLI::App* cmd, ServiceArgs* args) {
  cmd->add_option("--coordinator", args->coordinator,
                  "Coordinator host:port (default: $GLVQ_COORDINATOR, else 127.0.0.1:7070)");
  AddJsonOutputFlag(cmd, &args->output);
  cmd->add_option("--timeout", args->timeout_seconds, "Deadline of each call, seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  rpc::AddClientSecurityOptions(cmd, &args->security);
}

std::string CoordinatorAddress(const ServiceArgs& args) {
  if (!args.coordinator.empty()) return args.coordinator;
  const char* env = std::getenv("GLVQ_COORDINATOR");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:7070";
}

absl::StatusOr<std::unique_ptr<v1::JobService::Stub>> JobStub(const ServiceArgs& args) {
  ASSIGN_OR_RETURN(auto channel, rpc::MakeClientChannel(CoordinatorAddress(args), args.security));
  return v1::JobService::NewStub(channel);
}

void SetDeadline(grpc::ClientContext* context, const ServiceArgs& args) {
  rpc::SetTimeout(context, args.timeout());
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == absl::StatusCode::kUnavailable ||
                 status.code() == absl::StatusCode::kDeadlineExceeded
             ? kExitUnavailable
             : kExitBadInput;
}

int ExitCodeFor(v1::JobState state) {
  if (state == v1::JOB_STATE_FAILED) return kExitBadInput;
  if (state == v1::JOB_STATE_CANCELLED) return kExitCancelled;
  return kExitOk;
}

namespace {

// What to do about an error a person is likely to meet first: no
// coordinator listening where the CLI looks. Empty if there is nothing to add.
std::string HintFor(const ServiceArgs& args, const absl::Status& status) {
  const absl::string_view m = status.message();
  const bool refused = absl::StrContains(m, "failed to connect") ||
                       absl::StrContains(m, "Connection refused") ||
                       absl::StrContains(m, "connections to all backends failing");
  if (status.code() != absl::StatusCode::kUnavailable || !refused) return "";
  const std::string address = CoordinatorAddress(args);
  return absl::StrCat("no coordinator answers at ", address, ": start one (glvq-coordinator --listen ",
                      address,
                      " --state-dir DIR), or point the CLI at yours with --coordinator HOST:PORT or "
                      "$GLVQ_COORDINATOR; `glvq quantize` needs none");
}

}  // namespace

void PrintError(const ServiceArgs& args, const absl::Status& status) {
  const std::string code = absl::StatusCodeToString(status.code());
  const std::string hint = HintFor(args, status);
  if (args.json()) {
    nlohmann::ordered_json j = {{"code", code}, {"message", std::string(status.message())}};
    if (!hint.empty()) j["hint"] = hint;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cerr << "glvq: " << ErrorLine(status) << " [" << code << "]\n";
    if (!hint.empty()) std::cerr << "glvq: hint: " << hint << "\n";
  }
}

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  return name.starts_with("JOB_STATE_") ? name.substr(10) : name;
}

void PrintJob(const v1::Job& job, std::ostream& out) {
  const v1::JobStatus& s = job.status();
  const v1::Progress& p = s.progress();
  const v1::QualitySummary& q = p.quality();
  out << absl::StrFormat("job %s: %s\n", job.id(), StateName(s.state()));
  out << absl::StrFormat("  tasks %d/%d done, %d running, %d retries; weights %d/%d; %.1f s\n",
                         p.tasks_done(), p.tasks_total(), p.tasks_running(), p.task_retries(),
                         p.weights_done(), p.weights_total(),
                         absl::ToDoubleSeconds(rpc::FromProto(p.elapsed())));
  if (q.tensors() > 0 || p.tasks_done() > 0) {
    out << absl::StrFormat(
        "  quality: NMSE %.4g (max %.4g), SQNR %.2f dB (min %.2f), proxy loss %.4g; "
        "bits/weight %.4f payload, %.4f total\n",
        q.mean_nmse(), q.max_nmse(), q.mean_sqnr_db(), q.min_sqnr_db(), q.mean_proxy_loss(),
        q.payload_bits_per_weight(), q.total_bits_per_weight());
  }
  out << "  output: " << job.definition().spec().output().path() << "\n";
  if (!s.error_message().empty()) out << "  " << OneLine(s.error_message()) << "\n";
}

}  // namespace glvq::cli
