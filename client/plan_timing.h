// `glvq plan`'s time measured on this machine: the job's own quantizer
// configuration run on synthetic slices of the plan's shapes, instead of
// per-method rates from another machine (coordinator/estimates.h).
#pragma once

#include <span>

#include "absl/status/statusor.h"
#include "glvq/v1/task.pb.h"

namespace glvq::cli {

struct MeasuredTime {
  double low_seconds = 0;   // the plan on one CPU core, fitted to the fastest repeats
  double high_seconds = 0;  // low_seconds times the spread of the repeats (≥ 1)
  double measuring_seconds = 0;  // CPU time the measurement itself took
};

// For every distinct (quantizer settings, input width, calibrated) triple
// among `tasks` (width capped at kMaxMeasuredWidth), quantizes Gaussian
// slices of r and 2r rows (r = 65536 / width, within 8..256) with the
// task's configuration, and a synthetic SPD Hessian when the task has one,
// twice each, on this thread. Fits seconds = fixed + per_row · rows to the
// faster repeats and sums it over the tasks (low); the high end widens each
// task by the slower repeats' excess. Tasks wider than the cap are scaled
// from the cap by weights, so their time is a lower bound. The engine only:
// reading, writing and the service are not in it.
// Errors: the configuration's (jobspec::ToQuantizerConfig, the engine's).
absl::StatusOr<MeasuredTime> MeasurePlanTime(std::span<const v1::Task> tasks);

inline constexpr int64_t kMaxMeasuredWidth = 2048;

}  // namespace glvq::cli
