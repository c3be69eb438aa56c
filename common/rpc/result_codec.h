// A task's packed result on the wire and in the coordinator's state dir: a
// TaskResultHeader (proto/glvq/v1/task.proto) that lists the component
// tensors of the range's partial QuantizedTensor, and the payload, their
// bytes back to back. Each component and the whole payload carry CRC32C.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/packed/quantized_tensor.h"
#include "glvq/v1/task.pb.h"
#include "common/quant/result.h"
#include "common/quant/tensor_range.h"

namespace glvq::rpc {

struct EncodedResult {
  v1::TaskResultHeader header;
  std::string payload;
};

// The header (task id, job id, attempt, components, per-group stats,
// quality and its sums, bit accounting) and payload of `result`, a range of
// `task`. The caller fills in lease_id, worker_id, compute_time, backend.
EncodedResult EncodeResult(const v1::Task& task, const quant::RangeResult& result);

// Checks that `payload` is what `header` describes: its size and CRC32C,
// and components that tile it in order, each with its CRC32C. DATA_LOSS
// naming the first mismatch.
absl::Status CheckPayload(const v1::TaskResultHeader& header, std::string_view payload);

// The range's partial tensor (cols = the range's width, groups from 0),
// rebuilt from a checked payload and validated against `task` (its tensor,
// dtype, rows, group size and range). INVALID_ARGUMENT if the result does
// not fit the task or is not a valid packed tensor.
absl::StatusOr<QuantizedTensor> DecodeResult(const v1::Task& task,
                                             const v1::TaskResultHeader& header,
                                             std::string_view payload);

quant::QualitySums SumsOf(const v1::TaskResultHeader& header);

}  // namespace glvq::rpc
