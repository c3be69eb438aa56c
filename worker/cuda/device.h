// Discovery of usable CUDA devices.
#pragma once

#include "absl/status/statusor.h"

namespace glvq::cuda {

// Number of visible CUDA devices (> 0), or UNAVAILABLE when there is none or
// the driver cannot be used (on a machine without a GPU the runtime reports
// "driver version is insufficient", not "no device": both are UNAVAILABLE).
absl::StatusOr<int> UsableDeviceCount();

}  // namespace glvq::cuda
