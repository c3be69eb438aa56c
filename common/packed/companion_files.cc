#include "common/packed/companion_files.h"

#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"

namespace glvq {

namespace fs = std::filesystem;

absl::Status CopyCompanionFiles(const fs::path& source_dir, const fs::path& dest_dir) {
  for (std::string_view name : kCompanionFiles) {
    const fs::path from = source_dir / name;
    std::error_code ec;
    const fs::file_status st = fs::status(from, ec);  // follows symlinks
    if (ec || st.type() == fs::file_type::not_found) continue;
    // Checked before opening: reading a FIFO would block forever.
    if (st.type() != fs::file_type::regular) {
      return absl::InvalidArgumentError(
          absl::StrCat(from.string(), ": not a regular file; cannot copy it to the output"));
    }
    const uintmax_t size = fs::file_size(from, ec);
    if (ec || size > kMaxCompanionBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          from.string(), ": larger than ", kMaxCompanionBytes >> 20, " MiB; not copied"));
    }
    ASSIGN_OR_RETURN(const std::string contents, ReadFileToString(from, kMaxCompanionBytes));
    RETURN_IF_ERROR(AtomicWriteString(dest_dir / name, contents));
  }
  return absl::OkStatus();
}

}  // namespace glvq
