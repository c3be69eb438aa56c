// The device's measured copy bandwidth: the roofline the GPU benchmarks
// compare the engine's achieved bandwidth against (bench/RESULTS.md).
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"

namespace glvq::cuda {

// Copies `bytes` device-to-device on `device` a few times (after one
// warm-up copy) and returns the best rate in GB/s (1e9 bytes per second),
// counting each byte read and written: 2 × bytes per copy, the convention
// of bandwidth tests. UNAVAILABLE without the device, RESOURCE_EXHAUSTED
// when 2 × bytes do not fit.
absl::StatusOr<double> MeasureCopyBandwidth(int device, size_t bytes = size_t{1} << 30);

}  // namespace glvq::cuda
