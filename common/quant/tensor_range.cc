#include "common/quant/tensor_range.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"

namespace glvq::quant {
namespace {

absl::Status CheckSize(std::span<const std::byte> tensor, size_t element_size, int64_t rows,
                       int64_t cols) {
  if (rows < 1 || cols < 1 || tensor.size() != static_cast<size_t>(rows * cols) * element_size) {
    return absl::InvalidArgumentError(absl::StrCat("tensor of ", tensor.size(),
                                                   " bytes is not ", rows, " x ", cols,
                                                   " elements of ", element_size, " bytes"));
  }
  return absl::OkStatus();
}

// Copies `width` elements of each of `rows` rows, starting at `col` of a
// row-major matrix with `stride` elements per row.
std::string CopyBlock(std::span<const std::byte> tensor, size_t element_size, int64_t stride,
                      int64_t row0, int64_t rows, int64_t col, int64_t width) {
  std::string out(static_cast<size_t>(rows * width) * element_size, '\0');
  const size_t row_bytes = static_cast<size_t>(width) * element_size;
  for (int64_t r = 0; r < rows; ++r) {
    const size_t from = static_cast<size_t>((row0 + r) * stride + col) * element_size;
    std::memcpy(out.data() + static_cast<size_t>(r) * row_bytes, tensor.data() + from, row_bytes);
  }
  return out;
}

std::span<const std::byte> AsBytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// The bytes `ref` names inside its mapped file, checked against the file
// size and against shape × dtype.
absl::StatusOr<std::span<const std::byte>> RefBytes(const MappedFile& file,
                                                    const TensorFileRef& ref) {
  uint64_t elements = 1;
  for (int64_t d : ref.shape) elements *= static_cast<uint64_t>(std::max<int64_t>(d, 0));
  const uint64_t size = file.bytes().size();
  if (ref.length != elements * DTypeSize(ref.dtype) || ref.offset > size ||
      ref.length > size - ref.offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        ref.file.string(), ": tensor at offset ", ref.offset, " with ", ref.length,
        " bytes does not match its shape and dtype or lies outside the file (", size, " bytes)"));
  }
  return file.bytes().subspan(ref.offset, ref.length);
}

absl::StatusOr<std::vector<double>> ToF64(DType dtype, const std::string& bytes) {
  std::vector<double> out(bytes.size() / DTypeSize(dtype));
  RETURN_IF_ERROR(ConvertToF64(dtype, AsBytes(bytes), out));
  return out;
}

}  // namespace

absl::StatusOr<ColumnSpan> GroupColumns(int64_t cols, int64_t group_size, int64_t first,
                                        int64_t count) {
  const int64_t groups = group_size > 0 ? (cols + group_size - 1) / group_size : 0;
  if (first < 0 || count < 1 || first + count > groups) {
    return absl::InvalidArgumentError(absl::StrCat("group range [", first, ", ", first + count,
                                                   ") is not within the ", groups, " groups"));
  }
  return ColumnSpan{first * group_size, std::min(cols, (first + count) * group_size)};
}

absl::StatusOr<std::string> SliceColumns(std::span<const std::byte> tensor, size_t element_size,
                                         int64_t rows, int64_t cols, ColumnSpan span) {
  RETURN_IF_ERROR(CheckSize(tensor, element_size, rows, cols));
  if (span.begin < 0 || span.end > cols || span.width() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("columns [", span.begin, ", ", span.end,
                                                   ") are not within ", cols, " columns"));
  }
  return CopyBlock(tensor, element_size, cols, 0, rows, span.begin, span.width());
}

absl::StatusOr<std::string> SliceDiagonalBlock(std::span<const std::byte> tensor,
                                               size_t element_size, int64_t n, ColumnSpan span) {
  RETURN_IF_ERROR(CheckSize(tensor, element_size, n, n));
  if (span.begin < 0 || span.end > n || span.width() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("block [", span.begin, ", ", span.end, ") is not within ", n, " columns"));
  }
  return CopyBlock(tensor, element_size, n, span.begin, span.width(), span.begin, span.width());
}

absl::StatusOr<std::string> SliceDiagonal(std::span<const std::byte> tensor, size_t element_size,
                                          int64_t n) {
  RETURN_IF_ERROR(CheckSize(tensor, element_size, n, n));
  std::string out;
  out.reserve(static_cast<size_t>(n) * element_size);
  for (int64_t i = 0; i < n; ++i) {
    const auto* p = reinterpret_cast<const char*>(tensor.data()) +
                    static_cast<size_t>(i * n + i) * element_size;
    out.append(p, element_size);
  }
  return out;
}

absl::StatusOr<double> CheckedMeanDiagonal(std::span<const double> diagonal) {
  double sum = 0;  // summed in order, as the engine's own mean diagonal
  for (double d : diagonal) sum += d;
  const double mean = diagonal.empty() ? 0.0 : sum / static_cast<double>(diagonal.size());
  if (!(mean > 0) || !std::isfinite(mean)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Hessian has a mean diagonal of ", mean, "; it must be positive and finite"));
  }
  return mean;
}

absl::StatusOr<std::string> ReadWeightColumns(const TensorFileRef& weight, ColumnSpan span) {
  if (weight.shape.size() != 2 || !IsFloatDType(weight.dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(weight.file.string(), ": the weight must be a 2-D F32/F16/BF16 tensor"));
  }
  ASSIGN_OR_RETURN(const std::unique_ptr<MappedFile> file, MappedFile::Open(weight.file));
  ASSIGN_OR_RETURN(const std::span<const std::byte> bytes, RefBytes(*file, weight));
  return SliceColumns(bytes, DTypeSize(weight.dtype), weight.shape[0], weight.shape[1], span);
}

// Maps a square Hessian and hands its bytes to `slice`.
template <typename Slice>
absl::StatusOr<std::vector<double>> ReadHessianPart(const TensorFileRef& h, Slice slice) {
  if (h.shape.size() != 2 || h.shape[0] != h.shape[1] ||
      !(IsFloatDType(h.dtype) || h.dtype == DType::kF64)) {
    return absl::InvalidArgumentError(
        absl::StrCat(h.file.string(), ": the Hessian must be a square float tensor"));
  }
  ASSIGN_OR_RETURN(const std::unique_ptr<MappedFile> file, MappedFile::Open(h.file));
  ASSIGN_OR_RETURN(const std::span<const std::byte> bytes, RefBytes(*file, h));
  ASSIGN_OR_RETURN(const std::string part, slice(bytes, DTypeSize(h.dtype), h.shape[0]));
  return ToF64(h.dtype, part);
}

absl::StatusOr<std::vector<double>> ReadHessianBlock(const TensorFileRef& hessian,
                                                     ColumnSpan span) {
  return ReadHessianPart(hessian, [&](std::span<const std::byte> b, size_t e, int64_t n) {
    return SliceDiagonalBlock(b, e, n, span);
  });
}

absl::StatusOr<std::vector<double>> ReadHessianDiagonal(const TensorFileRef& hessian) {
  return ReadHessianPart(hessian, [](std::span<const std::byte> b, size_t e, int64_t n) {
    return SliceDiagonal(b, e, n);
  });
}

absl::StatusOr<RangeData> MakeRangeData(DType dtype, int64_t rows, int64_t width,
                                        std::string_view weight_bytes,
                                        std::vector<double> hessian_block,
                                        std::span<const double> hessian_diagonal) {
  RangeData data;
  data.rows = rows;
  data.width = width;
  data.weights.resize(static_cast<size_t>(rows * width));
  RETURN_IF_ERROR(ConvertToF32(
      dtype, std::as_bytes(std::span<const char>(weight_bytes.data(), weight_bytes.size())),
      data.weights));
  if (hessian_block.empty() && hessian_diagonal.empty()) return data;
  if (hessian_block.size() != static_cast<size_t>(width * width) ||
      hessian_diagonal.size() < static_cast<size_t>(width)) {
    return absl::InvalidArgumentError(absl::StrCat("Hessian block of ", hessian_block.size(),
                                                   " values does not fit ", width, " columns"));
  }
  data.hessian_block = std::move(hessian_block);
  ASSIGN_OR_RETURN(data.hessian_mean_diagonal, CheckedMeanDiagonal(hessian_diagonal));
  return data;
}

absl::StatusOr<RangeData> ReadRangeFromFiles(const TensorFileRef& weight,
                                             const TensorFileRef* hessian, int64_t group_size,
                                             int64_t first, int64_t count) {
  if (weight.shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(weight.file.string(), ": weight is not 2-D"));
  }
  const int64_t rows = weight.shape[0], cols = weight.shape[1];
  ASSIGN_OR_RETURN(const ColumnSpan span, GroupColumns(cols, group_size, first, count));
  ASSIGN_OR_RETURN(const std::string bytes, ReadWeightColumns(weight, span));
  std::vector<double> block, diagonal;
  if (hessian != nullptr) {
    if (hessian->shape != std::vector<int64_t>{cols, cols}) {
      return absl::InvalidArgumentError(
          absl::StrCat(hessian->file.string(), ": the Hessian must be [", cols, ", ", cols, "]"));
    }
    ASSIGN_OR_RETURN(block, ReadHessianBlock(*hessian, span));
    ASSIGN_OR_RETURN(diagonal, ReadHessianDiagonal(*hessian));
  }
  return MakeRangeData(weight.dtype, rows, span.width(), bytes, std::move(block), diagonal);
}

}  // namespace glvq::quant
