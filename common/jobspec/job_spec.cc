#include "common/jobspec/job_spec.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/base/one_line.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/jobspec/path_policy.h"
#include "common/jobspec/quantizer_spec.h"
#include "common/jobspec/yaml_load.h"
#include "common/jobspec/yaml_proto.h"
#include "common/packed/packed_model.h"
#include "common/quant/config.h"
#include "yaml-cpp/yaml.h"

namespace glvq::jobspec {
namespace {
namespace fs = std::filesystem;
namespace pb = google::protobuf;

constexpr uint64_t kMaxJobFileBytes = 1u << 20;
constexpr int kMaxCalibrationTextFiles = 4096;
constexpr int64_t kMaxCalibrationSamples = int64_t{1} << 20;
constexpr int64_t kMaxCalibrationSeqLen = int64_t{1} << 20;

absl::Status Invalid(const SourceMap* source, const std::string& field, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(WherePrefix(source, field), field, ": ", Sv(what)));
}

absl::Status Missing(const SourceMap* source, const std::string& parent, const std::string& key) {
  if (parent.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(WherePrefix(source, parent), "missing required key '", key, "'"));
  }
  return Invalid(source, parent, absl::StrCat("missing required key '", key, "'"));
}

// A path the job reads or writes: present, and absolute (the parser makes
// YAML paths absolute; a JobSpec built in code must say what it means).
absl::Status CheckPathField(const SourceMap* source, const std::string& parent,
                            const std::string& key, const std::string& value) {
  if (value.empty()) return Missing(source, parent, key);
  if (!fs::path(value).is_absolute()) {
    return Invalid(source, parent + "." + key,
                   absl::StrCat(QuoteInput(value, 512), " must be an absolute path"));
  }
  return absl::OkStatus();
}

// spec.calibration.text: at least one source, every path absolute, sizes
// in range (the tokenizer and the files themselves are read when the
// calibration runs).
absl::Status CheckCalibrationText(const SourceMap* source, const v1::JobSpec& spec) {
  const v1::CalibrationText& t = spec.calibration().text();
  const std::string parent = "spec.calibration.text";
  if (t.files().empty() && t.jsonl().empty()) {
    return Invalid(source, parent, "name at least one of 'files' or 'jsonl'");
  }
  for (const char* key : {"files", "jsonl"}) {
    const auto& list = std::string_view(key) == "files" ? t.files() : t.jsonl();
    if (list.size() > kMaxCalibrationTextFiles) {
      return Invalid(source, absl::StrCat(parent, ".", key),
                     absl::StrCat(list.size(), " files; at most ", kMaxCalibrationTextFiles));
    }
    for (const std::string& f : list) RETURN_IF_ERROR(CheckPathField(source, parent, key, f));
  }
  if (!t.tokenizer().empty()) {
    RETURN_IF_ERROR(CheckPathField(source, parent, "tokenizer", t.tokenizer()));
  }
  if (t.has_samples() && (t.samples() < 0 || t.samples() > kMaxCalibrationSamples)) {
    return Invalid(source, parent + ".samples",
                   absl::StrCat(t.samples(), " is not in [0, ", kMaxCalibrationSamples, "]"));
  }
  if (t.has_seq_len() && (t.seq_len() < 1 || t.seq_len() > kMaxCalibrationSeqLen)) {
    return Invalid(source, parent + ".seqLen",
                   absl::StrCat(t.seq_len(), " is not in [1, ", kMaxCalibrationSeqLen, "]"));
  }
  return absl::OkStatus();
}

// spec.finetune: its token source and sizes in range (the same bounds as
// `glvq finetune`'s flags; model/finetune.cc checks them again).
absl::Status CheckFinetune(const SourceMap* source, const v1::JobSpec& spec) {
  const v1::Finetune& f = spec.finetune();
  const std::string parent = "spec.finetune";
  if (f.tokens().empty()) {
    if (!spec.calibration().has_text()) {
      return Invalid(source, parent,
                     "name a token file in 'tokens', or set spec.calibration.text to tune on "
                     "its windows");
    }
  } else {
    RETURN_IF_ERROR(CheckPathField(source, parent, "tokens", f.tokens()));
  }
  const auto range = [&](bool has, int64_t v, const char* key, int64_t lo,
                         int64_t hi) -> absl::Status {
    if (!has || (v >= lo && v <= hi)) return absl::OkStatus();
    return Invalid(source, absl::StrCat(parent, ".", key),
                   absl::StrCat(v, " is not in [", lo, ", ", hi, "]"));
  };
  RETURN_IF_ERROR(range(f.has_steps(), f.steps(), "steps", 1, 1000000));
  RETURN_IF_ERROR(range(f.has_seq_len(), f.seq_len(), "seqLen", 2, 4096));
  RETURN_IF_ERROR(range(f.has_windows_per_step(), f.windows_per_step(), "windowsPerStep", 1, 256));
  if (f.has_learning_rate() && !(f.learning_rate() > 0 && f.learning_rate() <= 1)) {
    return Invalid(source, parent + ".learningRate",
                   absl::StrCat(f.learning_rate(), " is not in (0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status CheckPatterns(const SourceMap* source, const std::string& field,
                           const pb::RepeatedPtrField<std::string>& patterns) {
  for (int i = 0; i < patterns.size(); ++i) {
    if (patterns[i].empty())
      return Invalid(source, absl::StrCat(field, "[", i, "]"), "empty pattern");
  }
  return absl::OkStatus();
}

absl::Status ValidateConfigOf(const v1::QuantizerSpec& spec) {
  ASSIGN_OR_RETURN(quant::QuantizerConfig config, ToQuantizerConfig(spec));
  return quant::ValidateConfig(config);
}

// Each override names a pattern and changes something, and the quantizer
// it gives is valid (e8p at 3 bits is not).
absl::Status CheckOverrides(const SourceMap* source, const v1::JobSpec& spec) {
  const auto& overrides = spec.tensors().overrides();
  for (int i = 0; i < overrides.size(); ++i) {
    const std::string field = absl::StrCat("spec.tensors.overrides[", i, "]");
    const v1::TensorOverride& o = overrides[i];
    if (o.pattern().empty()) return Invalid(source, field + ".pattern", "empty pattern");
    if (!o.has_bits()) return Invalid(source, field, "an override must set bits");
    const absl::Status s = ValidateConfigOf(ApplyOverride(spec.quantizer(), o));
    if (!s.ok()) return Invalid(source, field + ".bits", std::string(s.message()));
  }
  return absl::OkStatus();
}

// The key most likely at fault for a rejected quantizer section, found by
// removing one key the file sets at a time: the first key in file order
// whose removal makes the section valid, else the first whose removal
// changes the error. The rules stay the engine's; this only points at a line.
std::string BlameQuantizerKey(const v1::QuantizerSpec& spec, const absl::Status& error,
                              const SourceMap& source) {
  const std::string base = "spec.quantizer";
  struct Candidate {
    std::tuple<bool, int, int> rank{true, INT32_MAX, INT32_MAX};  // (not fixed, line, column)
    std::string path;
  } best{.path = base};
  auto consider = [&](const std::string& path, const v1::QuantizerSpec& without) {
    if (!source.Has(path)) return;
    const absl::Status s = ValidateConfigOf(without);
    if (s == error) return;
    const SourcePosition p = source.Find(path);
    const std::tuple<bool, int, int> rank{!s.ok(), p.line, p.column};
    if (rank < best.rank) best = {rank, path};
  };
  const pb::Descriptor* d = v1::QuantizerSpec::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    v1::QuantizerSpec without = spec;
    without.GetReflection()->ClearField(&without, f);
    consider(base + "." + f->json_name(), without);
  }
  const pb::Descriptor* mu = v1::MuRange::descriptor();
  for (int i = 0; i < mu->field_count(); ++i) {
    v1::QuantizerSpec without = spec;
    without.mutable_mu()->GetReflection()->ClearField(without.mutable_mu(), mu->field(i));
    consider(base + ".mu." + mu->field(i)->json_name(), without);
  }
  return best.path;
}

absl::Status ValidateQuantizer(const v1::QuantizerSpec& spec, const SourceMap* source) {
  absl::Status s = ValidateConfigOf(spec);
  if (s.ok()) return s;
  const std::string field =
      source != nullptr ? BlameQuantizerKey(spec, s, *source) : std::string("spec.quantizer");
  return Invalid(source, field, std::string(s.message()));
}

absl::Status ValidateSpec(const v1::JobSpec& spec, const SourceMap* source) {
  if (!spec.has_model()) return Missing(source, "spec", "model");
  RETURN_IF_ERROR(CheckPathField(source, "spec.model", "path", spec.model().path()));
  if (spec.has_calibration()) {
    RETURN_IF_ERROR(
        CheckPathField(source, "spec.calibration", "hessians", spec.calibration().hessians()));
    if (spec.calibration().has_text()) RETURN_IF_ERROR(CheckCalibrationText(source, spec));
  }
  if (spec.has_finetune()) RETURN_IF_ERROR(CheckFinetune(source, spec));
  if (!spec.has_output()) return Missing(source, "spec", "output");
  RETURN_IF_ERROR(CheckPathField(source, "spec.output", "path", spec.output().path()));
  RETURN_IF_ERROR(CheckPatterns(source, "spec.tensors.include", spec.tensors().include()));
  RETURN_IF_ERROR(CheckPatterns(source, "spec.tensors.exclude", spec.tensors().exclude()));
  RETURN_IF_ERROR(CheckOverrides(source, spec));
  if (!v1::Backend_IsValid(spec.workers().backend())) {
    return Invalid(source, "spec.workers.backend",
                   absl::StrCat("unknown value ", static_cast<int>(spec.workers().backend())));
  }
  return ValidateQuantizer(spec.quantizer(), source);
}

// Relative paths in the file mean "next to the file".
void ResolvePath(const fs::path& base_dir, std::string* path) {
  if (path->empty()) return;
  fs::path p(*path);
  if (p.is_relative()) p = base_dir / p;
  *path = p.lexically_normal().string();
  // "dir/" normalises to "dir/"; a trailing separator would only confuse
  // the containment checks.
  while (path->size() > 1 && path->back() == '/') path->pop_back();
}

void Normalize(v1::JobSpec* spec) {
  absl::StatusOr<quant::QuantizerConfig> config = ToQuantizerConfig(spec->quantizer());
  if (config.ok()) *spec->mutable_quantizer() = FromQuantizerConfig(*config);
  if (spec->workers().backend() == v1::BACKEND_UNSPECIFIED) {
    spec->mutable_workers()->set_backend(v1::BACKEND_AUTO);
  }
}

// ---- filesystem --------------------------------------------------------------

absl::Status Precondition(const SourceMap* source, const std::string& field,
                          std::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(WherePrefix(source, field), field, ": ", Sv(what)));
}

absl::Status WithField(const SourceMap* source, const std::string& field, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(WherePrefix(source, field), field, ": ", s.message()));
}

absl::StatusOr<SafetensorsModel> OpenModelField(const SourceMap* source, const std::string& field,
                                                const fs::path& path) {
  absl::StatusOr<SafetensorsModel> model = SafetensorsModel::Open(path);
  if (model.ok()) return model;
  absl::Status s = model.status();
  // A directory without weights is the caller's setup, not a bad argument.
  if (absl::IsNotFound(s)) s = absl::FailedPreconditionError(s.message());
  return WithField(source, field, s);
}

// Symlinks resolved as far as the path exists.
absl::Status CheckOutput(const v1::JobSpec& spec, const fs::path& model_dir,
                         const SourceMap* source) {
  const std::string field = "spec.output.path";
  const fs::path out(spec.output().path());
  const fs::path out_c = ResolvedPath(out);
  std::vector<std::pair<fs::path, std::string>> inputs = {{ResolvedPath(model_dir), "model"}};
  if (spec.has_calibration()) {
    inputs.emplace_back(ResolvedPath(spec.calibration().hessians()), "calibration");
  }
  for (const auto& [dir, what] : inputs) {
    if (IsSameOrInside(out_c, dir)) {
      const char* relation = out_c == dir ? " is the " : " is inside the ";
      return Invalid(source, field,
                     absl::StrCat(out.string(), relation, what, " directory ", dir.string(),
                                  "; write the output elsewhere"));
    }
  }
  std::error_code ec;
  if (fs::symlink_status(out, ec).type() != fs::file_type::not_found) {
    return Precondition(source, field,
                        absl::StrCat(out.string(),
                                     " already exists; glvq never overwrites an output: remove "
                                     "it or choose another path"));
  }
  // The job creates the missing directories, so the nearest existing
  // ancestor decides. access(2) sees read-only mounts even for root.
  fs::path ancestor = out.parent_path();
  while (!ancestor.empty() && fs::symlink_status(ancestor, ec).type() == fs::file_type::not_found) {
    ancestor = ancestor.parent_path();
  }
  if (!fs::is_directory(ancestor, ec)) {
    return Precondition(source, field,
                        absl::StrCat("cannot create ", out.string(), ": ", ancestor.string(),
                                     " is not a directory"));
  }
  if (::access(ancestor.c_str(), W_OK | X_OK) != 0) {
    return Precondition(source, field,
                        absl::StrCat("cannot create ", out.string(), ": ", ancestor.string(),
                                     " is not writable (", std::strerror(errno), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& DefaultIncludePatterns() {
  static const auto* patterns = new std::vector<std::string>{"*"};
  return *patterns;
}

const std::vector<std::string>& DefaultExcludePatterns() {
  // Llama-style embed_tokens and lm_head; GPT-2-style wte/wpe.
  static const auto* patterns =
      new std::vector<std::string>{"*embed*", "*lm_head*", "*.wte.*", "*.wpe.*"};
  return *patterns;
}

bool IsDns1123Label(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '-'; });
}

void NormalizeJob(v1::QuantizationJob* job) {
  if (job->has_spec()) Normalize(job->mutable_spec());
}

absl::Status ValidateJob(const v1::QuantizationJob& job, const SourceMap* source) {
  if (job.api_version().empty()) return Missing(source, "", "apiVersion");
  if (job.api_version() != kApiVersion) {
    return Invalid(source, "apiVersion",
                   absl::StrCat("expected '", kApiVersion, "', got ", QuoteInput(job.api_version())));
  }
  if (job.kind().empty()) return Missing(source, "", "kind");
  if (job.kind() != kKind) {
    return Invalid(source, "kind", absl::StrCat("expected '", kKind, "', got ", QuoteInput(job.kind())));
  }
  if (!job.has_metadata()) return Missing(source, "", "metadata");
  if (job.metadata().name().empty()) return Missing(source, "metadata", "name");
  if (!IsDns1123Label(job.metadata().name())) {
    return Invalid(source, "metadata.name",
                   absl::StrCat(QuoteInput(job.metadata().name()),
                                " is not a DNS-1123 label (1-63 characters of a-z, 0-9 and '-', "
                                "starting and ending with a letter or digit)"));
  }
  if (!job.has_spec()) return Missing(source, "", "spec");
  return ValidateSpec(job.spec(), source);
}

absl::StatusOr<ParsedJob> ParseJobYaml(std::string_view text, const std::string& file,
                                       const fs::path& base_dir) {
  ParsedJob parsed;
  parsed.source = SourceMap(file);
  ASSIGN_OR_RETURN(YAML::Node doc, LoadSingleDocument(text, file));
  RETURN_IF_ERROR(YamlToProto(doc, "", &parsed.job, &parsed.source));

  if (parsed.job.has_spec()) {
    v1::JobSpec* spec = parsed.job.mutable_spec();
    std::error_code ec;  // fs::absolute throws on "" without one
    const fs::path base = base_dir.empty() ? fs::current_path(ec) : fs::absolute(base_dir, ec);
    if (spec->has_model()) ResolvePath(base, spec->mutable_model()->mutable_path());
    if (spec->has_calibration()) {
      v1::Calibration* c = spec->mutable_calibration();
      ResolvePath(base, c->mutable_hessians());
      if (c->has_text()) {
        v1::CalibrationText* t = c->mutable_text();
        for (std::string& f : *t->mutable_files()) ResolvePath(base, &f);
        for (std::string& f : *t->mutable_jsonl()) ResolvePath(base, &f);
        ResolvePath(base, t->mutable_tokenizer());
      }
    }
    if (spec->has_output()) ResolvePath(base, spec->mutable_output()->mutable_path());
    if (spec->has_finetune()) ResolvePath(base, spec->mutable_finetune()->mutable_tokens());
    v1::TensorSelection* tensors = spec->mutable_tensors();
    if (!parsed.source.Has("spec.tensors.include")) {
      for (const std::string& p : DefaultIncludePatterns()) tensors->add_include(p);
    }
    if (!parsed.source.Has("spec.tensors.exclude")) {
      for (const std::string& p : DefaultExcludePatterns()) tensors->add_exclude(p);
    }
  }
  RETURN_IF_ERROR(ValidateJob(parsed.job, &parsed.source));
  NormalizeJob(&parsed.job);
  return parsed;
}

absl::StatusOr<ParsedJob> LoadJobFile(const fs::path& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path, kMaxJobFileBytes);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat(path.string(), ": no such file"));
    }
    return absl::Status(text.status().code(),
                        absl::StrCat(path.string(), ": ", text.status().message()));
  }
  return ParseJobYaml(*text, path.string(), path.parent_path());
}

absl::StatusOr<JobInputs> CheckJobEnvironment(const v1::JobSpec& spec, const SourceMap* source) {
  const std::string model_field = "spec.model.path";
  const fs::path model_path(spec.model().path());
  std::error_code ec;
  if (!fs::exists(model_path, ec)) {
    return Precondition(source, model_field,
                        absl::StrCat(model_path.string(), ": no such file or directory"));
  }
  const fs::path model_dir =
      fs::is_directory(model_path, ec) ? model_path : model_path.parent_path();
  if (fs::exists(model_dir / fs::path(std::string(kManifestFileName)), ec)) {
    return Invalid(source, model_field,
                   absl::StrCat(model_dir.string(),
                                " is a glvq packed model; quantize the original model instead"));
  }
  ASSIGN_OR_RETURN(SafetensorsModel model, OpenModelField(source, model_field, model_path));
  std::optional<SafetensorsModel> hessians;
  if (spec.has_calibration()) {
    const std::string field = "spec.calibration.hessians";
    const fs::path h(spec.calibration().hessians());
    if (!fs::is_directory(h, ec)) {
      if (spec.calibration().has_text() && !fs::exists(h, ec)) {
        return Precondition(source, field,
                            absl::StrCat(h.string(), " does not exist yet: calibration from "
                                         "spec.calibration.text runs in `glvq quantize` (embedded "
                                         "mode); for a coordinator, run it there first or use "
                                         "`glvq tokenize` and `glvq calibrate`"));
      }
      return Precondition(source, field, absl::StrCat(h.string(), " is not a directory"));
    }
    ASSIGN_OR_RETURN(hessians, OpenModelField(source, field, h));
  }
  RETURN_IF_ERROR(CheckOutput(spec, model.directory(), source));
  return JobInputs{std::move(model), std::move(hessians)};
}

}  // namespace glvq::jobspec
