// tokenizer.json "added_tokens": strings (special like "<|im_end|>" or not) that are cut out
// of the text before the normalizer, pre-tokenizer and BPE see it, and that decode to their
// content verbatim.
//
// Matching, as in HF: leftmost match first, and the longest token among those starting there;
// the search resumes after the match. Tokens with normalized: false are matched on the raw
// text; tokens with normalized: true are matched, in their normalized form, on the normalized
// text of the stretches between the first kind. Per token:
//   single_word  match only when not glued to a word character on either side
//   lstrip/rstrip  the match also takes the White_Space before/after it
// NOTE: after an rstrip match the search resumes after the whitespace it took (HF resumes at
// the token's end, which can make splits overlap when a token itself starts with a space).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "model/tokenizer/json_fields.h"
#include "model/tokenizer/normalizers.h"

namespace mmx::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class AddedVocabulary {
 public:
  // A stretch of text: an added token (id set) or plain text between tokens.
  struct Segment {
    std::string_view text;  // a view into the text given to Split
    std::optional<int32_t> id;
  };

  // `json` is the "added_tokens" array (or null). `normalizer` (may be null) gives the form in
  // which normalized tokens are matched.
  static absl::StatusOr<AddedVocabulary> FromJson(const Json& json, std::string_view path,
                                                  const Normalizer* normalizer);

  // `text` cut at the tokens of one kind: normalized: false ones when !normalized_pass (call
  // on raw text), normalized: true ones when normalized_pass (call on normalized text).
  // Plain segments are never empty. Without `special`, special tokens are not matched: their
  // text stays plain text (message content, which must not forge the chat layout's tokens).
  std::vector<Segment> Split(std::string_view text, bool normalized_pass, bool special = true) const;

  const AddedToken* FindById(int32_t id) const;
  std::optional<int32_t> FindByContent(std::string_view content) const;
  int32_t max_id() const { return max_id_; }  // -1 when there are none
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token contents: finds the longest token starting at a position.
  class Trie {
   public:
    void Insert(std::string_view key, int32_t token_index);
    // Longest key that is a prefix of text.substr(pos): (token index, byte length).
    std::optional<std::pair<int32_t, size_t>> LongestAt(std::string_view text, size_t pos) const;
    bool empty() const { return nodes_.size() <= 1; }

   private:
    struct Node {
      std::map<uint8_t, int32_t> children;
      int32_t token_index = -1;
    };
    std::vector<Node> nodes_{1};
    bool can_start_[256] = {};
  };

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  absl::flat_hash_map<std::string, int32_t> by_content_;
  Trie raw_trie_;
  Trie normalized_trie_;
  int32_t max_id_ = -1;
};

}  // namespace mmx::tokenizer
