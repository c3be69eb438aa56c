// `glvq tokenize --tokenizer PATH --text FILE... --out FILE`: calibration
// (or evaluation) token files from text, with the model's own tokenizer
// (common/text/tokenizer.h; docs/calibration.md, "Calibration text").
#include <climits>
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
  std::string decode;  // a token file to turn back into text
  std::string field = "text";
  std::string out;
  text::WindowOptions windows;
  int32_t separator_id = -1;
  int threads = 0;
  std::string output;  // --json
};

// --decode: every sequence of a token file as one JSON line {"text": ...}.
absl::Status RunDecode(const TokenizeArgs& a) {
  if (!a.text.empty() || !a.jsonl.empty()) {
    return absl::InvalidArgumentError("--decode takes a token file, not --text or --jsonl");
  }
  ASSIGN_OR_RETURN(const std::unique_ptr<text::Tokenizer> tokenizer,
                   text::LoadTokenizer(a.tokenizer));
  ASSIGN_OR_RETURN(const std::vector<model::TokenSequence> sequences,
                   model::ReadTokenFile(a.decode, INT32_MAX));  // unknown ids: dropped
  std::string lines;
  for (const model::TokenSequence& seq : sequences) {
    lines += nlohmann::json{{"text", tokenizer->Decode(seq)}}.dump() + "\n";
  }
  return AtomicWriteString(a.out, lines);
}

absl::StatusOr<text::TokenizedText> RunTokenize(TokenizeArgs a, std::string* description) {
  if (a.text.empty() && a.jsonl.empty()) {
    return absl::InvalidArgumentError("give at least one --text or --jsonl file");
  }
  ASSIGN_OR_RETURN(const std::unique_ptr<text::Tokenizer> tokenizer,
                   text::LoadTokenizer(a.tokenizer));
  *description = tokenizer->Describe();
  if (a.separator_id >= 0) {
    if (a.separator_id >= tokenizer->vocab_size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--separator-id %d is not below the tokenizer's %d ids", a.separator_id,
                          tokenizer->vocab_size()));
    }
    a.windows.separator = a.separator_id;
  }
  std::vector<text::TextSource> sources;
  for (const std::string& p : a.text) sources.push_back({p, false, a.field});
  for (const std::string& p : a.jsonl) sources.push_back({p, true, a.field});
  ASSIGN_OR_RETURN(text::TokenizedText r,
                   text::TokenizeSources(*tokenizer, sources, a.windows, a.threads));
  const std::vector<std::string> comments = {
      absl::StrCat("glvq tokenize: ", *description),
      absl::StrFormat("%d documents, %d bytes, %d tokens; %d of %d windows of %d tokens (seed %d)",
                      r.documents, r.bytes, r.windows.stream_tokens, r.windows.sequences.size(),
                      r.windows.available, a.windows.seq_len, a.windows.seed)};
  RETURN_IF_ERROR(AtomicWriteString(a.out, model::FormatTokens(r.windows.sequences, comments)));
  return r;
}

void Print(const TokenizeArgs& a, const std::string& tokenizer, const text::TokenizedText& r) {
  const int64_t sequences = static_cast<int64_t>(r.windows.sequences.size());
  if (a.output == "json") {
    nlohmann::ordered_json j;
    j["tokenizer"] = tokenizer;
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
      "%s\ntokenized %d documents (%d bytes) into %d tokens; wrote %d sequences", tokenizer,
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
  cmd->add_option("--decode", args->decode,
                  "Instead: turn this token file back into text, one JSON line {\"text\": ...} "
                  "per sequence (special tokens skipped, as tokenizers' decode)");
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
    if (!args->decode.empty()) {
      if (const absl::Status s = RunDecode(*args); !s.ok()) {
        std::cerr << "glvq tokenize: " << ErrorLine(s) << "\n";
        *exit_code = kExitBadInput;
      }
      return;
    }
    std::string description;
    const auto r = RunTokenize(*args, &description);
    if (!r.ok()) {
      std::cerr << "glvq tokenize: " << ErrorLine(r.status()) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    Print(*args, description, *r);
  });
}

}  // namespace glvq::cli
