// The last step of a job: every quantized tensor assembled from its
// committed ranges (coordinator/assembler.h) and written with the
// pass-through tensors as a packed model into spec.output.path
// (WritePackedModel: a temporary directory, re-opened and verified, then
// renamed into place).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/safetensors/reader.h"
#include "glvq/v1/job.pb.h"
#include "glvq/v1/task.pb.h"

namespace glvq::coordinator {

// A committed task's result: its header and payload.
struct CommittedResult {
  v1::TaskResultHeader header;
  std::string payload;
};
using ResultLoader = std::function<absl::StatusOr<CommittedResult>(const v1::Task& task)>;

// Writes the output and returns the quality over its quantized tensors
// (from the packed model as re-read). `tasks` is the whole plan.
absl::StatusOr<v1::QualitySummary> WriteJobOutput(const v1::JobSpec& spec,
                                                  const std::vector<v1::Task>& tasks,
                                                  const SafetensorsModel& source,
                                                  const ResultLoader& load);

// The quality summary of an existing, verified packed model (a job whose
// output was renamed into place just before a coordinator crash).
absl::StatusOr<v1::QualitySummary> VerifyExistingOutput(const std::string& dir);

}  // namespace glvq::coordinator
