// libFuzzer target for job specs as they reach glvq: YAML text (docs/
// job-spec.md) that a user hands `glvq validate` / `glvq submit`, and -- for
// an input starting with a NUL byte -- the serialized QuantizationJob proto
// that SubmitJob receives from any gRPC client. Promise: nothing crashes,
// and every rejection carries a message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/jobspec/job_spec.h"

namespace {

void RequireMessage(const absl::Status& status) {
  if (!status.ok() && status.message().empty()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0 && data[0] == 0) {
    glvq::v1::QuantizationJob job;
    if (job.ParseFromArray(data + 1, static_cast<int>(size - 1))) {
      RequireMessage(glvq::jobspec::ValidateJob(job));
    }
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = glvq::jobspec::ParseJobYaml(text, "fuzz.yaml", "/fuzz");
  if (!parsed.ok()) {
    RequireMessage(parsed.status());
    return 0;
  }
  RequireMessage(glvq::jobspec::ValidateJob(parsed->job, &parsed->source));
  return 0;
}
