// Which tensors of a model a job quantizes (spec.tensors), and why the
// others are copied unchanged.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/glob.h"
#include "common/safetensors/reader.h"
#include "glvq/v1/job.pb.h"

namespace glvq::coordinator {

struct PassThrough {
  std::string name;
  std::string reason;  // e.g. "excluded by '*embed*'", "not a 2-D float tensor"
};

struct TensorSelectionResult {
  std::vector<std::string> quantize;      // sorted by name
  std::vector<PassThrough> pass_through;  // sorted by name
};

// A tensor is quantized if it matches an include pattern (no patterns: all),
// matches no exclude pattern, and is a non-empty 2-D F32/F16/BF16 tensor.
// INVALID_ARGUMENT if an include pattern matches no 2-D float tensor (a
// typo would otherwise quietly quantize nothing), if nothing is selected,
// or if a tensor name contains ".glvq." (reserved by the packed format).
absl::StatusOr<TensorSelectionResult> SelectTensors(const v1::TensorSelection& selection,
                                                    const SafetensorsModel& model);

}  // namespace glvq::coordinator
