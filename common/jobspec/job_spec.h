// Job spec files (YAML, Kubernetes style) and their checks.
//
//   apiVersion: glvq.io/v1
//   kind: QuantizationJob
//   metadata: {name: llama-70b-2bit}
//   spec: {model: {path: ...}, quantizer: {...}, output: {path: ...}, ...}
//
// The YAML is the proto QuantizationJob (proto/glvq/v1/job.proto) written
// in YAML; docs/job-spec.md lists every key. Checking happens in three
// steps so that each caller runs what it can:
//   1. ParseJobYaml / LoadJobFile: syntax, keys, types, defaults, and
//      ValidateJob — no filesystem access beyond reading the file;
//   2. ValidateJob: the checks a JobSpec built in code (a SubmitJob request)
//      needs too: envelope, name, required paths, the engine's config rules;
//   3. CheckJobEnvironment: the filesystem — model, calibration, output.
// Every error names the field, and with a SourceMap the file position.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/jobspec/source_map.h"
#include "common/safetensors/reader.h"
#include "glvq/v1/job.pb.h"

namespace glvq::jobspec {

inline constexpr char kApiVersion[] = "glvq.io/v1";
inline constexpr char kKind[] = "QuantizationJob";

// Patterns spec.tensors takes when the YAML leaves a key out: every tensor
// that can be quantized (2-D float) except input embeddings and the output
// head, whose errors hit every token (the usual practice of GPTQ, QuIP#).
const std::vector<std::string>& DefaultIncludePatterns();
const std::vector<std::string>& DefaultExcludePatterns();

struct ParsedJob {
  v1::QuantizationJob job;  // normalised: every quantizer field set
  SourceMap source;         // positions of the fields in the file
};

// Parses a job file's text. `file` names it in messages; relative paths in
// the spec resolve against `base_dir` (made absolute). INVALID_ARGUMENT
// with "FILE:LINE:COL: " for any syntax, key, type or value error.
absl::StatusOr<ParsedJob> ParseJobYaml(std::string_view text, const std::string& file,
                                       const std::filesystem::path& base_dir);

// Reads `path` (at most 1 MiB) and parses it; messages name `path` as
// given and relative paths resolve against its directory. NOT_FOUND if
// the file is missing.
absl::StatusOr<ParsedJob> LoadJobFile(const std::filesystem::path& path);

// Fills every quantizer field a spec leaves out (from its preset) and the
// workers' backend, as ParseJobYaml does for files: what the planner hands
// to workers must never depend on how the job arrived. A quantizer that
// does not convert is left as it is, for ValidateJob to report.
void NormalizeJob(v1::QuantizationJob* job);

// The checks that need no filesystem: apiVersion and kind, metadata.name a
// DNS-1123 label, model and output paths present and absolute, non-empty
// patterns, and the quantizer settings by quant::ValidateConfig.
// INVALID_ARGUMENT.
absl::Status ValidateJob(const v1::QuantizationJob& job, const SourceMap* source = nullptr);

// What a job reads, opened (headers validated, data mapped, nothing read).
struct JobInputs {
  SafetensorsModel model;
  // The calibration directory (`glvq calibrate` output: a safetensors
  // model whose __metadata__ maps each weight name to its Hessian tensor).
  std::optional<SafetensorsModel> hessians;
};

// Checks the spec against the filesystem without writing anything, and
// returns the opened inputs:
// - the model opens as safetensors (FAILED_PRECONDITION if the path does
//   not exist, the reader's INVALID_ARGUMENT if it is malformed) and is not
//   already a glvq packed model (INVALID_ARGUMENT);
// - calibration.hessians, if set, is a directory (FAILED_PRECONDITION)
//   that opens as safetensors;
// - output is neither the model (or calibration) directory nor inside it
//   (INVALID_ARGUMENT), does not exist yet, and its nearest existing
//   ancestor is a writable directory (FAILED_PRECONDITION).
absl::StatusOr<JobInputs> CheckJobEnvironment(const v1::JobSpec& spec,
                                              const SourceMap* source = nullptr);

// True for a DNS-1123 label: 1-63 of [a-z0-9-], alphanumeric at both ends.
bool IsDns1123Label(std::string_view name);

}  // namespace glvq::jobspec
