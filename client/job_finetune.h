// spec.finetune inside a job: after `glvq quantize` has written the job's
// output, tune its stored gains and norm weights (model/finetune.h) and put
// the tuned model in its place.
#pragma once

#include <ostream>

#include "absl/status/status.h"
#include "glvq/v1/job.pb.h"
#include "model/finetune.h"

namespace glvq::cli {

// The options spec.finetune gives (unset keys: FinetuneOptions' defaults).
model::FinetuneOptions FinetuneOptionsOf(const v1::Finetune& f, int threads);

// Nothing without spec.finetune. Else tunes the packed model at
// spec.output.path on spec.finetune.tokens (or spec.calibration.text's
// windows) and replaces it: the tuned model is written and verified beside
// it, then renamed into its place, and the untuned one removed. On error
// the untuned output stays where it is. Progress goes to `log`.
absl::Status FinetuneJobOutput(const v1::JobSpec& spec, int threads, std::ostream& log);

}  // namespace glvq::cli
