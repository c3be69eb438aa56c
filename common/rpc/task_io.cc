#include "common/rpc/task_io.h"

#include "absl/strings/str_cat.h"

namespace glvq::rpc {

absl::StatusOr<quant::TensorFileRef> FileRefOf(const v1::TensorLocation& location) {
  const std::optional<DType> dtype = ParseDType(location.dtype());
  if (!dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat(location.file(), ": unknown dtype '", location.dtype(), "'"));
  }
  return quant::TensorFileRef{location.file(), location.offset(), location.length(), *dtype,
                               {location.shape().begin(), location.shape().end()}};
}

absl::StatusOr<quant::ColumnSpan> TaskColumns(const v1::Task& task) {
  if (task.source().shape_size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(task.id(), ": the task's tensor is not 2-D"));
  }
  return quant::GroupColumns(task.source().shape(1), task.quantizer().group_size(),
                              task.groups().first(), task.groups().count());
}

}  // namespace glvq::rpc
