// Ranges of a tensor's column groups, the unit of work of a task
// (proto/glvq/v1/task.proto): which columns a range covers, slicing those
// columns (and the matching Hessian block) out of a tensor in memory or in
// a file, and the error sums from which a split tensor's quality is
// combined. Shared by the coordinator (which streams slices to workers and
// assembles results) and the worker (which quantizes them); quantizing a
// range is the engine's part (worker/engine/group_range.h).
//
// Ownership: every function returns owned copies; TensorFileRef names a
// file the caller keeps in place while it is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/packed/quantized_tensor.h"
#include "common/tensor/dtype.h"

namespace glvq::quant {

// Columns [begin, end) of a tensor.
struct ColumnSpan {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t width() const { return end - begin; }
};

// The columns of groups [first, first + count) of a tensor with `cols`
// columns cut into groups of `group_size`. INVALID_ARGUMENT if the range is
// empty or not inside the tensor's groups.
absl::StatusOr<ColumnSpan> GroupColumns(int64_t cols, int64_t group_size, int64_t first,
                                        int64_t count);

// The bytes of columns `span` of a row-major rows × cols tensor whose
// elements have `element_size` bytes: rows × span.width() elements,
// row-major. INVALID_ARGUMENT if `tensor` has the wrong size or the span
// does not fit.
absl::StatusOr<std::string> SliceColumns(std::span<const std::byte> tensor, size_t element_size,
                                         int64_t rows, int64_t cols, ColumnSpan span);
// The diagonal block [span, span] of an n × n tensor, row-major.
absl::StatusOr<std::string> SliceDiagonalBlock(std::span<const std::byte> tensor,
                                               size_t element_size, int64_t n, ColumnSpan span);
// The n diagonal elements of an n × n tensor.
absl::StatusOr<std::string> SliceDiagonal(std::span<const std::byte> tensor,
                                          size_t element_size, int64_t n);

// Where a tensor's bytes lie in a file (proto TensorLocation).
struct TensorFileRef {
  std::filesystem::path file;
  uint64_t offset = 0;  // absolute byte offset of the data
  uint64_t length = 0;  // bytes
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

// The inputs of a range read from memory-mapped files: the weight's
// columns converted to F32 and, with `hessian`, its diagonal block and
// mean diagonal converted to F64.
struct RangeData {
  std::vector<float> weights;  // rows × width
  int64_t rows = 0;
  int64_t width = 0;
  std::vector<double> hessian_block;  // width × width, empty without Hessian
  double hessian_mean_diagonal = 0;
};

// Reads groups [first, first + count) of `weight` (a 2-D float tensor) cut
// into `group_size` columns, with the matching block of `hessian` (n × n,
// n = cols; may be null). NOT_FOUND / FAILED_PRECONDITION if a file cannot
// be opened, INVALID_ARGUMENT if a reference does not fit its file or its
// shape and dtype disagree with its length.
absl::StatusOr<RangeData> ReadRangeFromFiles(const TensorFileRef& weight,
                                             const TensorFileRef* hessian, int64_t group_size,
                                             int64_t first, int64_t count);

// The pieces of ReadRangeFromFiles, for a coordinator that streams them to
// workers without file access (FetchTensor): the columns `span` of a 2-D
// weight in its own dtype (rows × width, row-major), and the Hessian's
// block and diagonal converted to F64.
absl::StatusOr<std::string> ReadWeightColumns(const TensorFileRef& weight, ColumnSpan span);
absl::StatusOr<std::vector<double>> ReadHessianBlock(const TensorFileRef& hessian,
                                                     ColumnSpan span);
absl::StatusOr<std::vector<double>> ReadHessianDiagonal(const TensorFileRef& hessian);

// RangeData from those pieces: `weight_bytes` rows × width elements of
// `dtype`; `hessian_block` and `hessian_diagonal` both empty (no Hessian)
// or width² and cols values.
absl::StatusOr<RangeData> MakeRangeData(DType dtype, int64_t rows, int64_t width,
                                        std::string_view weight_bytes,
                                        std::vector<double> hessian_block,
                                        std::span<const double> hessian_diagonal);

// MeanDiagonal of an extracted Hessian diagonal; INVALID_ARGUMENT unless it is
// positive and finite.
absl::StatusOr<double> CheckedMeanDiagonal(std::span<const double> diagonal);

}  // namespace glvq::quant
