#include "common/text/bpe_model.h"

#include <queue>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/text/regex.h"

namespace glvq::text {
namespace {

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

absl::StatusOr<BpeModel> BpeModel::Create(
    std::unordered_map<std::string, int32_t> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, Options options) {
  BpeModel m;
  std::unordered_map<int32_t, const std::string*> seen;
  for (const auto& [token, id] : vocab) {
    if (id < 0)
      return absl::InvalidArgumentError(absl::StrCat("vocab: negative id for '", token, "'"));
    if (!seen.emplace(id, &token).second) {
      return absl::InvalidArgumentError(absl::StrCat("vocab: id ", id, " is given twice"));
    }
    m.max_id_ = std::max(m.max_id_, id);
  }
  m.vocab_ = std::move(vocab);
  for (const auto& [token, id] : m.vocab_) m.tokens_[id] = &token;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto l = m.Find(left), r = m.Find(right), merged = m.Find(left + right);
    if (!l || !r || !merged) {
      return absl::InvalidArgumentError(
          absl::StrFormat("merges[%d] ('%s' '%s'): %s is not in the vocabulary", rank, left, right,
                          !l   ? "the left part"
                          : !r ? "the right part"
                               : "the merged token"));
    }
    // tokenizers keeps the first rank of a pair listed twice.
    m.merges_.emplace(PairKey(*l, *r), Merge{static_cast<int32_t>(rank), *merged});
  }
  if (options.unk_token) {
    m.unk_id_ = m.Find(*options.unk_token);
    if (!m.unk_id_) {
      return absl::InvalidArgumentError(
          absl::StrCat("unk_token '", *options.unk_token, "' is not in the vocabulary"));
    }
  }
  m.options_ = std::move(options);
  return m;
}

std::optional<int32_t> BpeModel::Find(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::TokenOf(int32_t id) const {
  const auto it = tokens_.find(id);
  return it == tokens_.end() ? nullptr : it->second;
}

const BpeModel::Merge* BpeModel::FindMerge(int32_t left, int32_t right) const {
  const auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::InitialSymbols(std::string_view word, std::vector<int32_t>* symbols) const {
  // A run of unknown characters: one unk (fuse_unk) or one per character.
  bool pending_unk = false;
  for (size_t i = 0; i < word.size();) {
    const size_t n = std::min(Utf8Length(static_cast<unsigned char>(word[i])), word.size() - i);
    const std::string_view ch = word.substr(i, n);
    i += n;
    if (const auto id = Find(ch)) {
      if (pending_unk) symbols->push_back(*unk_id_), pending_unk = false;
      symbols->push_back(*id);
      continue;
    }
    if (options_.byte_fallback) {
      std::vector<int32_t> bytes;
      for (const char c : ch) {
        const auto id = Find(absl::StrFormat("<0x%02X>", static_cast<unsigned char>(c)));
        if (!id) break;
        bytes.push_back(*id);
      }
      if (bytes.size() == ch.size()) {
        if (pending_unk) symbols->push_back(*unk_id_), pending_unk = false;
        symbols->insert(symbols->end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (!unk_id_) continue;  // tokenizers drops it silently
    if (pending_unk && !options_.fuse_unk) symbols->push_back(*unk_id_);
    pending_unk = true;
  }
  if (pending_unk) symbols->push_back(*unk_id_);
}

void BpeModel::MergeAll(std::vector<int32_t>* symbols) const {
  const int n = static_cast<int>(symbols->size());
  std::vector<int32_t>& id = *symbols;
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  struct Candidate {
    int32_t rank, pos, merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const Merge* m = FindMerge(id[pos], id[next[pos]])) queue.push({m->rank, pos, m->id});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int pos = top.pos;
    if (!alive[pos] || next[pos] < 0) continue;
    const int right = next[pos];
    // A stale entry: the pair at `pos` has changed since it was queued.
    const Merge* m = FindMerge(id[pos], id[right]);
    if (m == nullptr || m->id != top.merged) continue;
    id[pos] = top.merged;
    alive[right] = false;
    next[pos] = next[right];
    if (next[pos] >= 0) prev[next[pos]] = pos;
    push(prev[pos]);
    push(pos);
  }
  std::vector<int32_t> kept;
  kept.reserve(n);
  for (int i = 0; i < n; ++i) {
    if (alive[i]) kept.push_back(id[i]);
  }
  *symbols = std::move(kept);
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (options_.ignore_merges) {
    if (const auto id = Find(word)) {
      out->push_back(*id);
      return;
    }
  }
  std::vector<int32_t> symbols;
  InitialSymbols(word, &symbols);
  MergeAll(&symbols);
  out->insert(out->end(), symbols.begin(), symbols.end());
}

}  // namespace glvq::text
