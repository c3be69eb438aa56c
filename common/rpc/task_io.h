// Reading a task's inputs: the proto TensorLocation as the engine's file
// reference.
#pragma once

#include "absl/status/statusor.h"
#include "glvq/v1/task.pb.h"
#include "common/quant/tensor_range.h"

namespace glvq::rpc {

// INVALID_ARGUMENT for an unknown dtype.
absl::StatusOr<quant::TensorFileRef> FileRefOf(const v1::TensorLocation& location);

// The columns of the task's group range.
absl::StatusOr<quant::ColumnSpan> TaskColumns(const v1::Task& task);

}  // namespace glvq::rpc
