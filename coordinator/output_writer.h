// The last step of a job: its packed model written into spec.output.path
// from the staged results of its tasks (job_store.h), one tensor at a time.
//
// A quantized tensor is assembled from its ranges' staged results
// (decoded, checked, concatenated: assembler.h) whenever the writer needs
// it: once for the manifest, then once for each element size among its
// components as the safetensors data is streamed
// (WritePackedModelStreamed). Only the tensor assembled last is kept, so the
// memory held is about that of the largest tensor, not of the model. The
// model goes into a temporary sibling directory, is re-read and verified
// there (every checksum, the bit accounting), and only then renamed into
// place; its bytes are those WritePackedModel writes for the same tensors.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
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
// Reads a task's staged result; DATA_LOSS if it is not the committed one.
using ResultLoader = std::function<absl::StatusOr<CommittedResult>(const v1::Task& task)>;

// What writing an output held (a test hook for the memory bound).
struct OutputStats {
  // The most bytes of quantized data held at once: the staged payloads of
  // one tensor's ranges as read, the ranges decoded, and the assembled
  // tensor (counted as if nothing were freed or moved in between).
  uint64_t peak_tensor_bytes = 0;
  uint64_t tensor_loads = 0;  // tensors assembled from their staged results
};

// The tasks whose staged results `load` cannot deliver, each with the
// reason, in plan order. Reads each result once, one at a time.
std::vector<std::pair<std::string, absl::Status>> FindDamagedResults(
    const std::vector<v1::Task>& tasks, const ResultLoader& load);

// Writes the output and returns the quality over its quantized tensors (as
// recorded in the manifest written). `tasks` is the whole plan. Errors:
// `load`'s (naming the task), INVALID_ARGUMENT if the ranges do not make a
// valid tensor, DATA_LOSS if a tensor's bit accounting differs from what
// its ranges reported or the written model fails its verification.
absl::StatusOr<v1::QualitySummary> WriteJobOutput(const v1::JobSpec& spec,
                                                  const std::vector<v1::Task>& tasks,
                                                  const SafetensorsModel& source,
                                                  const ResultLoader& load,
                                                  OutputStats* stats = nullptr);

// The quality summary of an existing, verified packed model (a job whose
// output was renamed into place just before a coordinator crash).
absl::StatusOr<v1::QualitySummary> VerifyExistingOutput(const std::string& dir);

}  // namespace glvq::coordinator
