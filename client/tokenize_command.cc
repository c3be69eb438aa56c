// `glvq tokenize --tokenizer PATH --text FILE... --out FILE`: calibration
// (or evaluation) token files from text, with the model's own tokenizer
// (common/text/tokenizer.h; docs/calibration.md, "Calibration text").
#include <atomic>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/service_client.h"
#include "common/base/file_util.h"
#include "common/base/one_line.h"
#include "common/base/parallel.h"
#include "common/base/status_macros.h"
#include "common/text/token_windows.h"
#include "common/text/tokenizer.h"
#include "model/tokens.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {
namespace {

struct TokenizeArgs {
  std::string tokenizer;
  std::vector<std::string> text, jsonl;
  std::string field = "text";
  std::string out;
  text::WindowOptions windows;
  int32_t separator_id = -1;
  int threads = 0;
  std::string output;  // --json
};

struct TokenizeReport {
  std::string tokenizer;
  int64_t documents = 0, bytes = 0;
  text::Windows windows;
};

absl::StatusOr<std::vector<std::string>> AllDocuments(const TokenizeArgs& a) {
  std::vector<std::string> documents;
  auto add = [&](const std::string& path, bool json_lines) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<std::string> d, text::ReadDocuments({path, json_lines, a.field}));
    for (std::string& s : d) documents.push_back(std::move(s));
    return absl::OkStatus();
  };
  for (const std::string& p : a.text) RETURN_IF_ERROR(add(p, false));
  for (const std::string& p : a.jsonl) RETURN_IF_ERROR(add(p, true));
  return documents;
}

absl::StatusOr<TokenizeReport> RunTokenize(TokenizeArgs a) {
  if (a.text.empty() && a.jsonl.empty()) {
    return absl::InvalidArgumentError("give at least one --text or --jsonl file");
  }
  ASSIGN_OR_RETURN(const std::unique_ptr<text::Tokenizer> tokenizer,
                   text::LoadTokenizer(a.tokenizer));
  if (a.separator_id >= 0) {
    if (a.separator_id >= tokenizer->vocab_size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--separator-id %d is not below the tokenizer's %d ids", a.separator_id,
                          tokenizer->vocab_size()));
    }
    a.windows.separator = a.separator_id;
  }
  ASSIGN_OR_RETURN(const std::vector<std::string> documents, AllDocuments(a));
  TokenizeReport report;
  report.tokenizer = tokenizer->Describe();
  report.documents = static_cast<int64_t>(documents.size());
  std::vector<std::vector<int32_t>> ids(documents.size());
  std::vector<absl::Status> status(documents.size());
  ParallelFor(static_cast<int64_t>(documents.size()), a.threads, [&](int64_t i) {
    auto r = tokenizer->Encode(documents[i]);
    if (r.ok())
      ids[i] = *std::move(r);
    else
      status[i] = r.status();
  });
  for (size_t i = 0; i < documents.size(); ++i) {
    report.bytes += static_cast<int64_t>(documents[i].size());
    if (!status[i].ok()) {
      return absl::Status(status[i].code(),
                          absl::StrCat("document ", i + 1, ": ", status[i].message()));
    }
  }
  ASSIGN_OR_RETURN(report.windows, text::CutWindows(ids, a.windows));
  const std::vector<std::string> comments = {
      absl::StrCat("glvq tokenize: ", report.tokenizer),
      absl::StrFormat("%d documents, %d bytes, %d tokens; %d of %d windows of %d tokens (seed %d)",
                      report.documents, report.bytes, report.windows.stream_tokens,
                      report.windows.sequences.size(), report.windows.available, a.windows.seq_len,
                      a.windows.seed)};
  RETURN_IF_ERROR(
      AtomicWriteString(a.out, model::FormatTokens(report.windows.sequences, comments)));
  return report;
}

void Print(const TokenizeArgs& a, const TokenizeReport& r) {
  const int64_t sequences = static_cast<int64_t>(r.windows.sequences.size());
  if (a.output == "json") {
    nlohmann::ordered_json j;
    j["tokenizer"] = r.tokenizer;
    j["documents"] = r.documents;
    j["bytes"] = r.bytes;
    j["tokens"] = r.windows.stream_tokens;
    j["windows_available"] = r.windows.available;
    j["sequences"] = sequences;
    j["seq_len"] = a.windows.seq_len;
    j["out"] = a.out;
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << absl::StrFormat(
      "%s\ntokenized %d documents (%d bytes) into %d tokens; wrote %d sequences", r.tokenizer,
      r.documents, r.bytes, r.windows.stream_tokens, sequences);
  if (a.windows.seq_len > 0) std::cout << absl::StrFormat(" of %d tokens", a.windows.seq_len);
  std::cout << absl::StrFormat(" (of %d) to %s\n", r.windows.available, a.out);
}

}  // namespace

void RegisterTokenizeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "tokenize",
      "Turn text files into a token file (for calibrate and eval) with the model's tokenizer");
  auto args = std::make_shared<TokenizeArgs>();
  cmd->add_option(
         "--tokenizer", args->tokenizer,
         "tokenizer.json, tokenizer.model (SentencePiece), or a model directory holding one")
      ->required();
  cmd->add_option("--text", args->text, "Plain UTF-8 text files, each one document")
      ->expected(1, -1);
  cmd->add_option("--jsonl", args->jsonl, "JSON-lines files, one document per line (see --field)")
      ->expected(1, -1);
  cmd->add_option("--field", args->field, "The string field of each JSON line that holds the text")
      ->capture_default_str();
  cmd->add_option("--out", args->out, "Token file to write (replaced atomically)")->required();
  cmd->add_option("--seq-len", args->windows.seq_len,
                  "Tokens per sequence: the documents are joined and cut into windows of this "
                  "length; 0 writes every document whole, one per line")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("--samples", args->windows.samples,
                  "Keep this many windows, chosen at random (--seed); 0 keeps them all")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--seed", args->windows.seed, "Which windows --samples keeps")
      ->capture_default_str();
  cmd->add_option(
         "--separator-id", args->separator_id,
         "A token id put between two documents, e.g. the model's eos_token_id (default: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", args->threads, "Documents tokenized at once (0: all cores)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  AddJsonOutputFlag(cmd, &args->output);
  cmd->callback([args, exit_code] {
    const auto r = RunTokenize(*args);
    if (!r.ok()) {
      std::cerr << "glvq tokenize: " << ErrorLine(r.status()) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    Print(*args, *r);
  });
}

}  // namespace glvq::cli
