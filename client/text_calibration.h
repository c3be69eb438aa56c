// Calibration from text inside a job (spec.calibration.text): tokenize with
// the model's tokenizer.json, run the model, write the Hessians to
// spec.calibration.hessians, before `glvq quantize` submits the job.
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "glvq/v1/job.pb.h"

namespace glvq::cli {

// Defaults of spec.calibration.text's optional keys.
inline constexpr int64_t kDefaultCalibrationSamples = 128;
inline constexpr int64_t kDefaultCalibrationSeqLen = 512;

// Nothing without spec.calibration.text. Else, when the Hessian directory
// does not exist, computes it (threads: 0 = all cores) and says so on
// `log`; when it exists, checks that it was computed from the same text,
// tokenizer and options (its "glvq.calibration_text" record) and reuses
// it, else FAILED_PRECONDITION naming both records.
absl::Status PrepareTextCalibration(const v1::JobSpec& spec, int threads, std::ostream& log);

}  // namespace glvq::cli
