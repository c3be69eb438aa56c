#include "common/text/tokenizer.h"

#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/text/tokenizer_json.h"

namespace glvq::text {
namespace {

// tokenizer.json files of large vocabularies are tens of MB.
constexpr uint64_t kMaxTokenizerBytes = uint64_t{1} << 30;

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path file = path;
  if (std::filesystem::is_directory(path, ec)) {
    file = path / "tokenizer.json";
    if (!std::filesystem::exists(file, ec) &&
        std::filesystem::exists(path / "tokenizer.model", ec)) {
      file = path / "tokenizer.model";
    }
    if (!std::filesystem::exists(file, ec)) {
      return absl::NotFoundError(absl::StrCat(path.string(), ": no tokenizer.json"));
    }
  }
  if (!std::filesystem::is_regular_file(file, ec)) {
    return absl::NotFoundError(absl::StrCat(file.string(), ": not a regular file"));
  }
  if (file.extension() == ".model") {
    // Debian's libsentencepiece carries its own protobuf 3.14 under the
    // same symbol names as the system protobuf that gRPC needs, so the two
    // cannot share a process (it aborts at load). Llama 2 and Mistral
    // checkpoints ship a tokenizer.json as well, which glvq reads.
    return absl::UnimplementedError(
        absl::StrCat(file.string(),
                     ": SentencePiece tokenizer.model files are not supported; use the "
                     "model's tokenizer.json (Llama 2 and Mistral checkpoints ship one)"));
  }
  if (file.extension() != ".json") {
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": expected tokenizer.json or tokenizer.model"));
  }
  ASSIGN_OR_RETURN(const std::string json, ReadFileToString(file, kMaxTokenizerBytes));
  return ParseTokenizerJson(json, file.string());
}

}  // namespace glvq::text
