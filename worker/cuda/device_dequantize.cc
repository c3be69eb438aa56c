// DequantizeOnDevice (device_ops.h): the GLVQ dequantize kernel, plus the
// host's own rounding for the few weights the kernel flags.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cuda/codec_kernels.h"
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/device.h"
#include "worker/cuda/device_array.h"
#include "worker/cuda/device_ops.h"

namespace glvq::cuda {
namespace {

// One weight exactly as DecodeGlvqGroup (common/packed/quantized_tensor.cc)
// computes it: the host's libm decides the flagged roundings.
float DecodeOnHost(const QuantizedTensor& qt, int64_t index) {
  const int64_t r = index / qt.cols, col = index % qt.cols;
  const int64_t g = col / qt.group_size, c = col % qt.group_size, d = qt.dim;
  const int64_t width = qt.GroupWidth(g), c0 = c / d * d, k = std::min(d, width - c0);
  const uint8_t* stream = qt.codes.data() + qt.offsets[g];
  const double center = std::ldexp(1.0, qt.bits[g] - 1) - 0.5;
  const float* gen = qt.generators.data() + g * d * d;
  const int64_t i = c - c0;
  double y = 0;
  for (int64_t j = 0; j < k; ++j) {
    const auto code = static_cast<uint64_t>(r * width + c0 + j);
    const double z = packed::ExtractCode(stream, code, qt.bits[g]) - center;
    y += static_cast<double>(gen[i * d + j]) * z;
  }
  const double mu = qt.mu[g];
  const double v = mu == 0 ? y : std::copysign(std::expm1(std::fabs(y) * std::log1p(mu)) / mu, y);
  return static_cast<float>(static_cast<double>(qt.scale[g]) * v);
}

struct DeviceTensor {
  DeviceArray<uint8_t> codes;
  DeviceArray<packed::GroupDesc> groups;
  DeviceArray<float> generators, mu, scale;
  DeviceArray<double> log1p_mu;
};

absl::Status Upload(const QuantizedTensor& qt, DeviceTensor* t) {
  const std::vector<packed::GroupDesc> desc = MakeGroupDescs(qt);
  std::vector<double> lg(qt.mu.size());
  for (size_t g = 0; g < lg.size(); ++g) lg[g] = std::log1p(static_cast<double>(qt.mu[g]));
  RETURN_IF_ERROR(t->codes.Allocate(qt.codes.size()));
  RETURN_IF_ERROR(t->groups.Allocate(desc.size()));
  RETURN_IF_ERROR(t->generators.Allocate(qt.generators.size()));
  RETURN_IF_ERROR(t->mu.Allocate(qt.mu.size()));
  RETURN_IF_ERROR(t->scale.Allocate(qt.scale.size()));
  RETURN_IF_ERROR(t->log1p_mu.Allocate(lg.size()));
  RETURN_IF_ERROR(t->codes.Upload(qt.codes));
  RETURN_IF_ERROR(t->groups.Upload(desc));
  RETURN_IF_ERROR(t->generators.Upload(qt.generators));
  RETURN_IF_ERROR(t->mu.Upload(qt.mu));
  RETURN_IF_ERROR(t->scale.Upload(qt.scale));
  return t->log1p_mu.Upload(lg);
}

}  // namespace

absl::Status DequantizeOnDevice(const QuantizedTensor& qt, std::span<float> out) {
  RETURN_IF_ERROR(ValidateQuantizedTensor(qt));
  if (qt.method != kMethodGlvq || !qt.rht_seed.empty() || !qt.row_scale.empty()) {
    return absl::UnimplementedError(absl::StrCat(
        qt.name,
        ": the CUDA dequantizer decodes glvq tensors without RHT or row gains; use DequantizeRef"));
  }
  const auto n = static_cast<size_t>(qt.rows * qt.cols);
  if (out.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(qt.name, ": output has ", out.size(), " elements, expected ", n));
  }
  RETURN_IF_ERROR(UsableDeviceCount().status());
  DeviceTensor t;
  RETURN_IF_ERROR(Upload(qt, &t));
  DeviceArray<float> d_out;
  DeviceArray<uint64_t> flagged;
  DeviceArray<uint32_t> count;
  const auto capacity = static_cast<uint32_t>(std::max<size_t>(1024, n / 4096));
  RETURN_IF_ERROR(d_out.Allocate(n));
  RETURN_IF_ERROR(flagged.Allocate(capacity));
  RETURN_IF_ERROR(count.Allocate(1));
  RETURN_IF_ERROR(count.Zero());
  const GlvqSideInfo side{t.groups.get(), t.generators.get(), t.mu.get(), t.log1p_mu.get(),
                          t.scale.get()};
  CUDA_RETURN_IF_ERROR(LaunchDequantizeGlvq(
      t.codes.get(), side, static_cast<int32_t>(qt.NumGroups()), qt.rows, qt.cols,
      (qt.group_size + qt.dim - 1) / qt.dim, d_out.get(), {flagged.get(), count.get(), capacity}));
  RETURN_IF_ERROR(d_out.Download(out));
  uint32_t flags = 0;
  RETURN_IF_ERROR(count.Download(std::span<uint32_t>(&flags, 1)));
  if (flags > capacity) {
    RETURN_IF_ERROR(DequantizeRef(qt, out));  // too many to patch: the reference itself
  } else {
    std::vector<uint64_t> indices(flags);
    RETURN_IF_ERROR(flagged.Download(indices));
    for (uint64_t i : indices) out[i] = DecodeOnHost(qt, static_cast<int64_t>(i));
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) {
      return absl::InvalidArgumentError(absl::StrCat("quantized tensor '", qt.name,
                                                     "': weight at row ", i / qt.cols, ", column ",
                                                     i % qt.cols, " decodes to ", out[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace glvq::cuda
