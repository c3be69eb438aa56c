#include "client/job_finetune.h"

#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/text_calibration.h"
#include "common/base/status_macros.h"
#include "model/tokens.h"

namespace glvq::cli {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::vector<model::TokenSequence>> Tokens(const v1::JobSpec& spec, int threads,
                                                         int64_t vocab_size, std::ostream& log) {
  if (!spec.finetune().tokens().empty()) {
    return model::ReadTokenFile(spec.finetune().tokens(), vocab_size);
  }
  return CalibrationTextWindows(spec, threads, vocab_size, log);
}

// Puts `tuned` at `out`: `out` moves aside, `tuned` takes its name, the
// old one goes. Each step is one rename, so `out` names a complete model
// except between the two renames, when the aside copy holds it.
absl::Status Replace(const fs::path& out, const fs::path& tuned) {
  const fs::path aside = absl::StrCat(out.string(), ".untuned.", getpid());
  std::error_code ec;
  fs::rename(out, aside, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot move ", out.string(), ": ", ec.message()));
  fs::rename(tuned, out, ec);
  if (ec) {
    fs::rename(aside, out, ec);
    return absl::InternalError(absl::StrCat("cannot move the tuned model to ", out.string()));
  }
  fs::remove_all(aside, ec);
  return absl::OkStatus();
}

}  // namespace

model::FinetuneOptions FinetuneOptionsOf(const v1::Finetune& f, int threads) {
  model::FinetuneOptions o;
  if (f.has_steps()) o.steps = f.steps();
  if (f.has_seq_len()) o.seq_len = f.seq_len();
  if (f.has_windows_per_step()) o.windows_per_step = f.windows_per_step();
  if (f.has_learning_rate()) o.learning_rate = f.learning_rate();
  o.seed = f.seed();
  o.threads = threads;
  return o;
}

absl::Status FinetuneJobOutput(const v1::JobSpec& spec, int threads, std::ostream& log) {
  if (!spec.has_finetune()) return absl::OkStatus();
  const fs::path out(spec.output().path());
  const fs::path model_path(spec.model().path());
  std::error_code ec;
  const fs::path model_dir =
      fs::is_directory(model_path, ec) ? model_path : model_path.parent_path();
  ASSIGN_OR_RETURN(const model::LlamaModel original, model::LlamaModel::LoadSafetensors(model_dir));
  ASSIGN_OR_RETURN(const SafetensorsModel source, SafetensorsModel::Open(model_dir));
  ASSIGN_OR_RETURN(const std::vector<model::TokenSequence> tokens,
                   Tokens(spec, threads, original.config().vocab_size, log));
  const model::FinetuneOptions o = FinetuneOptionsOf(spec.finetune(), threads);
  const fs::path tuned = absl::StrCat(out.string(), ".finetune.", getpid());
  {
    ASSIGN_OR_RETURN(const PackedModel packed, PackedModel::Open(out));
    ASSIGN_OR_RETURN(model::TunableLlama student, model::LoadTunable(packed));
    log << absl::StrFormat("fine-tuning: %d steps of %d windows of %d tokens\n", o.steps,
                           o.windows_per_step, o.seq_len);
    const auto progress = [&](int64_t step, double kl) {
      if ((step + 1) % 25 == 0 || step + 1 == o.steps) {
        log << absl::StrFormat("fine-tuning: step %d/%d, KL %.4f\n", step + 1, o.steps, kl);
      }
    };
    ASSIGN_OR_RETURN(const model::FinetuneReport r,
                     model::Finetune(original, student, tokens, o, progress));
    std::optional<SafetensorsModel> hessians;
    if (spec.has_calibration()) {
      ASSIGN_OR_RETURN(hessians, SafetensorsModel::Open(spec.calibration().hessians()));
    }
    const model::FinetuneSource from{source, original, hessians ? &*hessians : nullptr};
    RETURN_IF_ERROR(model::WriteFinetuned(packed, student, from, o, r, tuned));
    log << absl::StrFormat("fine-tuning: %d parameters in %.0f s\n", r.parameters, r.seconds);
  }
  return Replace(out, tuned);
}

}  // namespace glvq::cli
