// BabaiCodesOnDevice and PackGroupCodesOnDevice (device_ops.h).
#include "worker/cuda/device_ops.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cuda/codec_kernels.h"
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/device.h"
#include "worker/cuda/device_array.h"
#include "worker/cuda/device_workspace.h"

namespace glvq::cuda {
namespace {

absl::Status Invalid(const QuantizedTensor& qt, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("quantized tensor '", qt.name, "': ", what));
}

// PackGroupCodes's checks: method, array sizes, bit widths, code ranges.
absl::Status CheckPackInput(std::span<const uint8_t> unpacked, const QuantizedTensor& qt) {
  if (qt.method != kMethodGlvq && qt.method != kMethodRtn) {
    return Invalid(qt, absl::StrCat(qt.method, " codes are not bit-packed codes"));
  }
  const int64_t groups = qt.NumGroups();
  if (static_cast<int64_t>(qt.bits.size()) != groups ||
      static_cast<int64_t>(unpacked.size()) != qt.rows * qt.cols) {
    return Invalid(
        qt, absl::StrCat("bits has ", qt.bits.size(), " entries and the codes ", unpacked.size(),
                         " for ", groups, " groups of ", qt.rows, " x ", qt.cols, " weights"));
  }
  size_t first = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const int b = qt.bits[g];
    if (b < 1 || b > 8) return Invalid(qt, absl::StrCat("bits per code must be in 1..8, got ", b));
    const auto count = static_cast<size_t>(qt.rows * qt.GroupWidth(g));
    for (size_t k = first; k < first + count; ++k) {
      if (unpacked[k] >> b != 0) {
        return Invalid(qt, absl::StrCat("group ", g, ": code ", static_cast<int>(unpacked[k]),
                                        " at index ", k - first, " does not fit in ", b, " bits"));
      }
    }
    first += count;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> BabaiCodesOnDevice(const BabaiInput& in) {
  const int64_t groups = (in.w.cols + in.group_size - 1) / in.group_size;
  const auto n = static_cast<size_t>(groups);
  if (in.bits.size() != n || in.scale.size() != n || in.mu.size() != n || in.g.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("BabaiCodesOnDevice: per-group arrays must have ", groups, " entries"));
  }
  RETURN_IF_ERROR(UsableDeviceCount().status());
  SpanShape shape;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&shape.device));
  shape.rows = in.w.rows;
  shape.group_size = static_cast<int32_t>(in.group_size);
  shape.dim = in.dim;
  for (int64_t g = 0; g < groups; ++g) {
    shape.widths.push_back(
        static_cast<int32_t>(std::min(in.group_size, in.w.cols - g * in.group_size)));
  }
  shape.weight_elements = in.w.rows * in.w.cols;
  ASSIGN_OR_RETURN(std::unique_ptr<DeviceWorkspace> ws, DeviceWorkspace::Create(shape));
  RETURN_IF_ERROR(ws->UploadWeights(in.w.data, in.w.cols, in.w.cols));
  RETURN_IF_ERROR(ws->SetBits(in.bits));
  RETURN_IF_ERROR(ws->SetScales(in.scale));
  RETURN_IF_ERROR(ws->SetModel(in.g, in.mu, std::vector<uint8_t>(n, 1)));
  RETURN_IF_ERROR(ws->Compand());
  RETURN_IF_ERROR(ws->Babai());
  return ws->DownloadCodes(DeviceWorkspace::Codes::kCurrent);
}

absl::Status PackGroupCodesOnDevice(std::span<const uint8_t> unpacked, QuantizedTensor* qt) {
  RETURN_IF_ERROR(CheckPackInput(unpacked, *qt));
  RETURN_IF_ERROR(UsableDeviceCount().status());
  const int64_t groups = qt->NumGroups();
  qt->offsets = ComputeGroupOffsets(qt->rows, qt->cols, qt->group_size, qt->bits);
  std::vector<PackGroup> desc(static_cast<size_t>(groups));
  uint64_t src = 0, max_bytes = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const auto width = static_cast<uint32_t>(qt->GroupWidth(g));
    desc[g] = {src, static_cast<uint64_t>(qt->offsets[g]), width, width, qt->bits[g], 0};
    src += static_cast<uint64_t>(qt->rows) * width;
    max_bytes = std::max(max_bytes, static_cast<uint64_t>(qt->offsets[g + 1] - qt->offsets[g]));
  }
  DeviceArray<uint8_t> d_src, d_dst;
  DeviceArray<PackGroup> d_desc;
  RETURN_IF_ERROR(d_src.Allocate(unpacked.size()));
  RETURN_IF_ERROR(d_dst.Allocate(static_cast<size_t>(qt->offsets.back())));
  RETURN_IF_ERROR(d_desc.Allocate(desc.size()));
  RETURN_IF_ERROR(d_src.Upload(unpacked));
  RETURN_IF_ERROR(d_desc.Upload(desc));
  CUDA_RETURN_IF_ERROR(LaunchPackCodes(d_desc.get(), static_cast<int32_t>(groups), qt->rows,
                                       max_bytes, d_src.get(), d_dst.get()));
  qt->codes.assign(static_cast<size_t>(qt->offsets.back()), 0);
  return d_dst.Download(qt->codes);
}

}  // namespace glvq::cuda
