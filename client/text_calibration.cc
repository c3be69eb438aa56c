#include "client/text_calibration.h"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/crc32c.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/safetensors/reader.h"
#include "common/text/token_windows.h"
#include "common/text/tokenizer.h"
#include "model/calibration.h"
#include "model/llama.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kRecordKey[] = "glvq.calibration_text";
constexpr uint64_t kMaxDigestFileBytes = uint64_t{4} << 30;

fs::path ModelDir(const v1::JobSpec& spec) {
  const fs::path p(spec.model().path());
  std::error_code ec;
  return fs::is_directory(p, ec) ? p : p.parent_path();
}

// spec.calibration.text.tokenizer, else the model directory's tokenizer.json.
absl::StatusOr<fs::path> TokenizerFile(const v1::JobSpec& spec) {
  const v1::CalibrationText& t = spec.calibration().text();
  fs::path p = t.tokenizer().empty() ? ModelDir(spec) : fs::path(t.tokenizer());
  std::error_code ec;
  if (fs::is_directory(p, ec)) p /= "tokenizer.json";
  if (!fs::is_regular_file(p, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "spec.calibration.text: no tokenizer.json at ", p.string(),
        t.tokenizer().empty() ? " (the model's directory; name one with 'tokenizer')" : ""));
  }
  return p;
}

// "size:crc32c" of a file's bytes: enough to notice changed text.
absl::StatusOr<std::string> FileStamp(const fs::path& path) {
  ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(path, kMaxDigestFileBytes));
  return absl::StrFormat("%d:%08x", bytes.size(),
                         Crc32c(std::as_bytes(std::span<const char>(bytes.data(), bytes.size()))));
}

// What the Hessians are a function of, as one JSON line.
absl::StatusOr<std::string> Record(const v1::JobSpec& spec) {
  const v1::CalibrationText& t = spec.calibration().text();
  nlohmann::ordered_json j;
  ASSIGN_OR_RETURN(const fs::path tokenizer, TokenizerFile(spec));
  ASSIGN_OR_RETURN(j["tokenizer"], FileStamp(tokenizer));
  for (const std::string& f : t.files()) {
    ASSIGN_OR_RETURN(const std::string stamp, FileStamp(f));
    j["files"].push_back({{"path", f}, {"stamp", stamp}});
  }
  for (const std::string& f : t.jsonl()) {
    ASSIGN_OR_RETURN(const std::string stamp, FileStamp(f));
    j["jsonl"].push_back({{"path", f}, {"stamp", stamp}, {"field", t.field()}});
  }
  j["samples"] = t.has_samples() ? t.samples() : kDefaultCalibrationSamples;
  j["seq_len"] = t.has_seq_len() ? t.seq_len() : kDefaultCalibrationSeqLen;
  j["seed"] = t.seed();
  j["output_aware"] = !t.has_output_aware() || t.output_aware();
  return j.dump();
}

}  // namespace

absl::StatusOr<std::vector<model::TokenSequence>> CalibrationTextWindows(const v1::JobSpec& spec,
                                                                         int threads,
                                                                         int64_t vocab_size,
                                                                         std::ostream& log) {
  const v1::CalibrationText& t = spec.calibration().text();
  ASSIGN_OR_RETURN(const fs::path tokenizer_file, TokenizerFile(spec));
  ASSIGN_OR_RETURN(const std::unique_ptr<text::Tokenizer> tokenizer,
                   text::LoadTokenizer(tokenizer_file));
  const std::string field = t.field().empty() ? "text" : t.field();
  std::vector<text::TextSource> sources;
  for (const std::string& f : t.files()) sources.push_back({f, false, field});
  for (const std::string& f : t.jsonl()) sources.push_back({f, true, field});
  text::WindowOptions options;
  options.samples = t.has_samples() ? t.samples() : kDefaultCalibrationSamples;
  options.seq_len = t.has_seq_len() ? t.seq_len() : kDefaultCalibrationSeqLen;
  options.seed = t.seed();
  ASSIGN_OR_RETURN(text::TokenizedText r,
                   text::TokenizeSources(*tokenizer, sources, options, threads));
  for (const auto& seq : r.windows.sequences) {
    for (const int32_t id : seq) {
      if (id >= vocab_size) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "spec.calibration.text: the tokenizer gives id %d, but the model has %d ids", id,
            vocab_size));
      }
    }
  }
  log << absl::StrFormat(
      "calibration text: %d documents, %d tokens; %d windows of %d tokens (%s)\n", r.documents,
      r.windows.stream_tokens, r.windows.sequences.size(), options.seq_len, tokenizer->Describe());
  return std::move(r.windows.sequences);
}

namespace {

absl::Status Reuse(const fs::path& dir, const std::string& record) {
  ASSIGN_OR_RETURN(const SafetensorsModel h, SafetensorsModel::Open(dir));
  const auto it = h.metadata().find(kRecordKey);
  const std::string found = it == h.metadata().end() ? "(none)" : it->second;
  if (found == record) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("spec.calibration.hessians: ", dir.string(),
                   " exists but holds Hessians of other calibration text or options (recorded ",
                   found, "; this job: ", record, "); remove it or name another directory"));
}

}  // namespace

absl::Status PrepareTextCalibration(const v1::JobSpec& spec, int threads, std::ostream& log) {
  if (!spec.has_calibration() || !spec.calibration().has_text()) return absl::OkStatus();
  const fs::path out(spec.calibration().hessians());
  ASSIGN_OR_RETURN(const std::string record, Record(spec));
  std::error_code ec;
  if (fs::exists(out, ec)) {
    RETURN_IF_ERROR(Reuse(out, record));
    log << "calibration: reusing " << out.string() << " (same text and options)\n";
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(const model::LlamaModel m, model::LlamaModel::LoadSafetensors(ModelDir(spec)));
  ASSIGN_OR_RETURN(const std::vector<model::TokenSequence> sequences,
                   CalibrationTextWindows(spec, threads, m.config().vocab_size, log));
  model::CalibrationOptions options;
  options.lanes = threads > 0 ? threads : 1;
  const v1::CalibrationText& t = spec.calibration().text();
  options.output_aware = !t.has_output_aware() || t.output_aware();
  ASSIGN_OR_RETURN(const model::HessianAccumulator h, model::Calibrate(m, sequences, options));
  RETURN_IF_ERROR(model::WriteHessians(
      out, h, {{kRecordKey, record}, {"glvq.sequences", absl::StrCat(sequences.size())}}));
  log << "calibration: wrote " << out.string() << "\n";
  return absl::OkStatus();
}

}  // namespace glvq::cli
