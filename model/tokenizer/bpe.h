// tokenizer.json "model" of type BPE: a vocabulary (token string -> id) and a ranked merge
// list, applied to one pre-tokenized piece at a time.
//
// Encoding a piece: split it into characters (with continuing_subword_prefix on every character
// but the first and end_of_word_suffix on the last, when set), look each up (byte_fallback
// tries "<0xAB>" tokens for a character the vocabulary lacks, then unk_token), then repeatedly
// merge the adjacent pair with the lowest merge rank, leftmost first, until no pair has a
// merge. A priority queue keyed by (rank, position) makes that O(n log n) per piece, and a
// bounded cache remembers recent pieces. With ignore_merges, a piece that is itself in the
// vocabulary is emitted whole without merging.
//
// Not supported: dropout (Unimplemented at load; it makes encoding random).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "model/tokenizer/json_fields.h"

namespace mmx::tokenizer {

class BpeModel {
 public:
  // `json` is tokenizer.json's "model" object. Merges may be "a b" strings or ["a", "b"]
  // pairs; a repeated pair takes its last rank (as HF's map does). InvalidArgument (naming the
  // path) for a merge whose parts or result are not in the vocabulary or a malformed field.
  // Two tokens with the same id are accepted; IdToToken then gives the one that sorts first.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const Json& json,
                                                            std::string_view path);

  // Appends the ids of `word`, one non-empty pre-tokenized piece (valid UTF-8). Characters
  // that neither the vocabulary, byte fallback nor unk_token cover are dropped, as in HF when
  // unk_token is null. Thread-safe.
  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // nullptr if no vocabulary entry has this id.
  const std::string* IdToToken(int32_t id) const;
  // The largest id in the vocabulary, -1 when it is empty.
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  int64_t num_merges() const { return static_cast<int64_t>(merges_.size()); }

 private:
  struct MergeResult {
    uint32_t rank;
    int32_t id;
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  BpeModel() = default;
  void TokenizeUncached(std::string_view word, std::vector<int32_t>* ids) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  absl::flat_hash_map<uint64_t, MergeResult> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::optional<int32_t> byte_fallback_ids_[256];

  // Piece -> ids for recently seen pieces. Bounded: once full it stops growing (as HF's).
  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kMaxCachedWordBytes = 128;
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace mmx::tokenizer
