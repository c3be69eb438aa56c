// Which filesystem paths a job may name on a coordinator (docs/security.md,
// "Path policy"). A coordinator serving remote clients reads the model and
// calibration paths and writes the output path of every submitted job with
// its own rights; --allowed-root confines all three.
#pragma once

#include <filesystem>
#include <vector>

#include "absl/status/status.h"
#include "glvq/v1/job.pb.h"

namespace glvq::jobspec {

// OK when `roots` is empty (no policy), or when the model, the calibration
// (if any) and the output path all lie inside one of `roots` after ".."
// and symbolic links are resolved as far as each path exists -- so neither
// "root/../etc" nor a symlink inside a root pointing out of it escapes.
// PERMISSION_DENIED naming the field and the resolved path otherwise.
absl::Status CheckPathPolicy(const v1::JobSpec& spec,
                             const std::vector<std::filesystem::path>& roots);

}  // namespace glvq::jobspec
