// Calibration from text inside a job (spec.calibration.text): tokenize with
// the model's tokenizer.json, run the model, write the Hessians to
// spec.calibration.hessians, before `glvq quantize` submits the job.
#pragma once

#include <ostream>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "glvq/v1/job.pb.h"
#include "model/tokens.h"

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

// The windows of spec.calibration.text (which must be set), tokenized with
// its tokenizer (threads: 0 = all cores); INVALID_ARGUMENT for an id
// outside [0, vocab_size). Says what it read on `log`.
absl::StatusOr<std::vector<model::TokenSequence>> CalibrationTextWindows(const v1::JobSpec& spec,
                                                                         int threads,
                                                                         int64_t vocab_size,
                                                                         std::ostream& log);

}  // namespace glvq::cli
