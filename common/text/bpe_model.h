// The BPE model of a tokenizer.json: vocabulary, ranked merges, and the
// merge loop of Hugging Face `tokenizers` (lowest rank first, leftmost
// first among equal ranks), with its unknown-token and byte-fallback rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace glvq::text {

class BpeModel {
 public:
  struct Options {
    std::optional<std::string> unk_token;  // must be in the vocabulary
    bool fuse_unk = false;                 // consecutive unknown characters share one unk
    bool byte_fallback = false;            // unknown characters as <0xXX> byte tokens
    bool ignore_merges = false;            // a word that is itself in the vocabulary is one token
  };

  // `vocab`: token → id (ids ≥ 0, distinct). `merges`: pairs in rank order;
  // both halves and their concatenation must be in the vocabulary.
  // INVALID_ARGUMENT naming the first offending entry.
  static absl::StatusOr<BpeModel> Create(
      std::unordered_map<std::string, int32_t> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, Options options);

  // Appends the ids of one pre-tokenized word (UTF-8, one symbol per
  // character before merging) to `out`.
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  // The id of `token`, if in the vocabulary.
  std::optional<int32_t> Find(std::string_view token) const;
  // The token of `id`, or null if no token has it.
  const std::string* TokenOf(int32_t id) const;

  int32_t max_id() const { return max_id_; }
  size_t vocab_count() const { return vocab_.size(); }
  size_t merge_count() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t id;  // the merged token
  };
  void InitialSymbols(std::string_view word, std::vector<int32_t>* symbols) const;
  void MergeAll(std::vector<int32_t>* symbols) const;
  const Merge* FindMerge(int32_t left, int32_t right) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<int32_t, const std::string*> tokens_;  // id → its key in vocab_
  std::unordered_map<uint64_t, Merge> merges_;  // key: left id << 32 | right id
  Options options_;
  std::optional<int32_t> unk_id_;
  int32_t max_id_ = -1;
};

}  // namespace glvq::text
