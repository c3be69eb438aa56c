// A worker's inputs for one task: read from the model files by path and
// offset where the worker sees them (a shared filesystem), else streamed
// from the coordinator with FetchTensor in checksummed chunks.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "glvq/v1/services.grpc.pb.h"
#include "worker/engine/group_range.h"

namespace glvq::worker {

// Whether `file` lies under one of `shared_paths` and can be opened.
bool CanReadDirectly(const std::string& file, const std::vector<std::string>& shared_paths);

// Reads the task's range from the files it names.
absl::StatusOr<quant::RangeData> ReadTaskInputs(const v1::Task& task);

// Streams the task's range from the coordinator: weights, and with a
// Hessian its block and diagonal. A broken stream is resumed at the byte
// it reached (a few times); a chunk failing its CRC32C is DATA_LOSS.
// Adds the chunk bytes received (also by attempts that failed) to
// `*received_bytes`.
absl::StatusOr<quant::RangeData> FetchTaskInputs(v1::WorkerService::StubInterface& stub,
                                                  const std::string& worker_id,
                                                  const v1::Lease& lease, const v1::Task& task,
                                                  uint64_t* received_bytes);

}  // namespace glvq::worker
