// The input fingerprint of a job (proto InputFingerprint): what a
// restarted coordinator compares before it resumes a job, so that it
// never mixes results computed from different inputs into one output.
// It covers the normalised spec and, per input file, the size and the
// CRC32C of the safetensors header; tensor data is not read (a same-size
// rewrite of the data alone goes unnoticed: docs/service.md).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/jobspec/job_spec.h"
#include "glvq/v1/journal.pb.h"

namespace glvq::coordinator {

absl::StatusOr<v1::InputFingerprint> Fingerprint(const v1::JobSpec& spec,
                                                 const jobspec::JobInputs& inputs);

// "" if equal, else what differs (for the job's error message).
std::string FingerprintDifference(const v1::InputFingerprint& before,
                                  const v1::InputFingerprint& now);

}  // namespace glvq::coordinator
