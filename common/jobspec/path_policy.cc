#include "common/jobspec/path_policy.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/one_line.h"

namespace glvq::jobspec {
namespace fs = std::filesystem;

fs::path ResolvedPath(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::absolute(p).lexically_normal() : c;
}

bool IsSameOrInside(const fs::path& path, const fs::path& dir) {
  auto [dir_end, path_it] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  // weakly_canonical keeps a trailing separator as an empty last element.
  return dir_end == dir.end() || (std::next(dir_end) == dir.end() && dir_end->empty());
}

absl::Status CheckOutputOutsideStateDir(const v1::JobSpec& spec, const fs::path& state_dir) {
  if (state_dir.empty()) return absl::OkStatus();
  const fs::path out = ResolvedPath(spec.output().path());
  const fs::path state = ResolvedPath(state_dir);
  if (!IsSameOrInside(out, state) && !IsSameOrInside(state, out)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "spec.output.path: ", QuoteInput(out.string(), 512),
      " overlaps the coordinator's state dir ", QuoteInput(state.string(), 512),
      "; write the output elsewhere"));
}

absl::Status CheckPathPolicy(const v1::JobSpec& spec, const std::vector<fs::path>& roots) {
  if (roots.empty()) return absl::OkStatus();
  std::vector<fs::path> resolved_roots;
  for (const fs::path& r : roots) resolved_roots.push_back(ResolvedPath(r));
  std::vector<std::pair<const char*, std::string>> paths = {
      {"spec.model.path", spec.model().path()}, {"spec.output.path", spec.output().path()}};
  if (spec.has_calibration()) {
    paths.emplace_back("spec.calibration.hessians", spec.calibration().hessians());
    for (const std::string& f : spec.calibration().text().files())
      paths.emplace_back("spec.calibration.text.files", f);
    for (const std::string& f : spec.calibration().text().jsonl())
      paths.emplace_back("spec.calibration.text.jsonl", f);
    if (!spec.calibration().text().tokenizer().empty())
      paths.emplace_back("spec.calibration.text.tokenizer", spec.calibration().text().tokenizer());
  }
  if (!spec.finetune().tokens().empty()) {
    paths.emplace_back("spec.finetune.tokens", spec.finetune().tokens());
  }
  for (const auto& [field, path] : paths) {
    const fs::path p = ResolvedPath(path);
    const bool allowed = std::any_of(resolved_roots.begin(), resolved_roots.end(),
                                     [&](const fs::path& r) { return IsSameOrInside(p, r); });
    if (!allowed) {
      std::vector<std::string> names;
      for (const fs::path& r : resolved_roots) names.push_back(r.string());
      return absl::PermissionDeniedError(absl::StrCat(
          field, ": ", path, " resolves to ", p.string(),
          ", outside the coordinator's allowed roots (", absl::StrJoin(names, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace glvq::jobspec
