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

// OK unless the output path and the coordinator's `state_dir` overlap (one
// is the other or lies inside it, resolved as above). The coordinator stages
// results and appends its journal there; a job writing into it would mix
// its files with the coordinator's and fail late. INVALID_ARGUMENT
// otherwise, naming both paths.
absl::Status CheckOutputOutsideStateDir(const v1::JobSpec& spec,
                                        const std::filesystem::path& state_dir);

// `p` made absolute, with ".." and symbolic links resolved as far as it
// exists (lexically normalised beyond that).
std::filesystem::path ResolvedPath(const std::filesystem::path& p);

// Whether `path` is `dir` or lies inside it, component by component; both
// should be ResolvedPath()s.
bool IsSameOrInside(const std::filesystem::path& path, const std::filesystem::path& dir);

}  // namespace glvq::jobspec
