#include "model/tokenizer/bpe.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/tokenizer/absl_compat.h"
#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {
namespace {

// Ids above this are refused rather than allocated for (a corrupt file should not cost GBs).
constexpr int32_t kMaxId = 1 << 26;

absl::StatusOr<std::pair<std::string, std::string>> ParseMerge(const Json& merge,
                                                               std::string_view path) {
  if (merge.is_string()) {
    // "a b": the first space separates the two parts (byte-level tokens contain no space).
    const std::string& text = merge.get_ref<const std::string&>();
    const size_t space = text.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == text.size()) {
      return JsonError(path, absl::StrCat("expected \"left right\", got \"", text, "\""));
    }
    return std::make_pair(text.substr(0, space), text.substr(space + 1));
  }
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return std::make_pair(merge[0].get<std::string>(), merge[1].get<std::string>());
  }
  return JsonError(path, "expected \"left right\" or [\"left\", \"right\"]");
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const Json& json,
                                                             std::string_view path) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  if (json.contains("dropout") && !json["dropout"].is_null()) {
    const Json& dropout = json["dropout"];
    if (!dropout.is_number()) return JsonError(JsonChild(path, "dropout"), "expected a number");
    if (dropout.get<double>() > 0) {
      return absl::UnimplementedError(absl::StrCat(
          JsonChild(path, "dropout"),
          ": BPE dropout makes encoding random and is not supported (set it to null)"));
    }
  }
  MMX_ASSIGN_OR_RETURN(model->fuse_unk_, JsonBool(json, "fuse_unk", false, path));
  MMX_ASSIGN_OR_RETURN(model->byte_fallback_, JsonBool(json, "byte_fallback", false, path));
  MMX_ASSIGN_OR_RETURN(model->ignore_merges_, JsonBool(json, "ignore_merges", false, path));
  MMX_ASSIGN_OR_RETURN(std::optional<std::string> prefix,
                       JsonOptionalString(json, "continuing_subword_prefix", path));
  MMX_ASSIGN_OR_RETURN(std::optional<std::string> suffix,
                       JsonOptionalString(json, "end_of_word_suffix", path));
  model->continuing_subword_prefix_ = prefix.value_or("");
  model->end_of_word_suffix_ = suffix.value_or("");

  // Vocabulary.
  MMX_ASSIGN_OR_RETURN(const Json* vocab, JsonObject(json, "vocab", path));
  const std::string vocab_path = JsonChild(path, "vocab");
  model->vocab_.reserve(vocab->size());
  int32_t max_id = -1;
  for (const auto& [token, id_json] : vocab->items()) {
    MMX_ASSIGN_OR_RETURN(const int32_t id, JsonId(id_json, JsonChild(vocab_path, token)));
    if (id > kMaxId) {
      return JsonError(JsonChild(vocab_path, token),
                       absl::StrCat("id ", id, " is past the supported maximum ", kMaxId));
    }
    model->vocab_.emplace(token, id);
    max_id = std::max(max_id, id);
  }
  model->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  model->has_id_.assign(static_cast<size_t>(max_id + 1), false);
  // nlohmann's objects iterate in key order, so with duplicate ids the first key wins.
  for (const auto& [token, id_json] : vocab->items()) {
    const int32_t id = id_json.get<int32_t>();
    if (model->has_id_[id]) continue;
    model->has_id_[id] = true;
    model->id_to_token_[id] = token;
  }

  // Merges: rank = position in the list.
  MMX_ASSIGN_OR_RETURN(const Json* merges, JsonArray(json, "merges", path));
  const std::string merges_path = JsonChild(path, "merges");
  const std::string& prefix_text = model->continuing_subword_prefix_;
  model->merges_.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const std::string merge_path = JsonIndex(merges_path, i);
    MMX_ASSIGN_OR_RETURN(auto parts, ParseMerge((*merges)[i], merge_path));
    const auto& [left, right] = parts;
    // With a continuing-subword prefix ("##"), "a" + "##b" makes "ab".
    std::string merged = left;
    if (!prefix_text.empty() && right.compare(0, prefix_text.size(), prefix_text) == 0) {
      merged.append(right, prefix_text.size());
    } else {
      merged += right;
    }
    for (const std::string* part : {&left, &right, static_cast<const std::string*>(&merged)}) {
      if (!model->TokenToId(*part).has_value()) {
        return JsonError(merge_path,
                         absl::StrCat("token \"", *part, "\" is not in the vocabulary"));
      }
    }
    const int32_t left_id = *model->TokenToId(left);
    const int32_t right_id = *model->TokenToId(right);
    const int32_t merged_id = *model->TokenToId(merged);
    model->merges_.insert_or_assign(PairKey(left_id, right_id),
                                    MergeResult{static_cast<uint32_t>(i), merged_id});
  }

  MMX_ASSIGN_OR_RETURN(std::optional<std::string> unk, JsonOptionalString(json, "unk_token", path));
  // An unk_token missing from the vocabulary behaves like none: HF fails only when it is needed.
  if (unk.has_value()) model->unk_id_ = model->TokenToId(*unk);
  if (model->byte_fallback_) {
    for (int b = 0; b < 256; ++b) {
      model->byte_fallback_ids_[b] = model->TokenToId(absl::StrFormat("<0x%02X>", b));
    }
  }
  return model;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(AsAbsl(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (std::optional<int32_t> id = TokenToId(word)) {
      ids->push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    absl::ReaderMutexLock lock(&cache_mu_);
    auto it = cache_.find(AsAbsl(word));
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> word_ids;
  TokenizeUncached(word, &word_ids);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  if (cacheable) {
    absl::MutexLock lock(&cache_mu_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::move(word_ids));
  }
}

void BpeModel::TokenizeUncached(std::string_view word, std::vector<int32_t>* ids) const {
  // Symbols form a doubly linked list over a vector; a merge keeps the left symbol (so a
  // symbol's index stays its position order) and unlinks the right one (id = -1).
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto push = [&symbols](int32_t id) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
  };

  std::string decorated;
  bool previous_unknown = false;
  size_t pos = 0;
  while (pos < word.size()) {
    size_t length;
    DecodeUtf8(word, pos, &length);
    const std::string_view character = word.substr(pos, length);
    const bool is_first = pos == 0;
    pos += length;
    const bool is_last = pos == word.size();
    std::optional<int32_t> id;
    if ((!is_first && !continuing_subword_prefix_.empty()) ||
        (is_last && !end_of_word_suffix_.empty())) {
      decorated.assign(is_first ? "" : continuing_subword_prefix_);
      decorated.append(character);
      if (is_last) decorated += end_of_word_suffix_;
      id = TokenToId(decorated);
    } else {
      id = TokenToId(character);
    }
    if (id.has_value()) {
      push(*id);
      previous_unknown = false;
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (char c : character) all_bytes = all_bytes && byte_fallback_ids_[static_cast<uint8_t>(c)];
      if (all_bytes) {
        for (char c : character) push(*byte_fallback_ids_[static_cast<uint8_t>(c)]);
        previous_unknown = false;
        continue;
      }
    }
    if (unk_id_.has_value() && !(fuse_unk_ && previous_unknown)) push(*unk_id_);
    previous_unknown = true;
  }
  if (symbols.empty()) return;

  // (rank, left symbol, merged id), smallest rank first and leftmost among equal ranks.
  using Candidate = std::tuple<uint32_t, int32_t, int32_t>;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    auto it = merges_.find(PairKey(symbols[left].id, symbols[right].id));
    if (it != merges_.end()) queue.emplace(it->second.rank, left, it->second.id);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    const auto [rank, left, merged_id] = queue.top();
    queue.pop();
    Symbol& l = symbols[left];
    if (l.id < 0 || l.next < 0) continue;
    // A stale entry: one side has merged since it was queued.
    auto it = merges_.find(PairKey(l.id, symbols[l.next].id));
    if (it == merges_.end() || it->second.id != merged_id) continue;
    const int32_t right = l.next;
    l.id = merged_id;
    l.next = symbols[right].next;
    if (l.next >= 0) symbols[l.next].prev = left;
    symbols[right].id = -1;
    if (l.prev >= 0) consider(l.prev);
    consider(left);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

}  // namespace mmx::tokenizer
