#include "model/tokenizer/added_tokens.h"

#include <unicode/uchar.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/tokenizer/absl_compat.h"
#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {
namespace {

// Rust regex's Unicode `\w`, which HF's single_word test uses.
bool IsWordChar(char32_t cp) {
  return u_hasBinaryProperty(cp, UCHAR_ALPHABETIC) || u_hasBinaryProperty(cp, UCHAR_JOIN_CONTROL) ||
         (U_GET_GC_MASK(cp) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

// The code point ending just before `end` (text[..end] is valid UTF-8, end > 0).
char32_t CharBefore(std::string_view text, size_t end, size_t* start) {
  size_t pos = end - 1;
  while (pos > 0 && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) --pos;
  size_t length;
  *start = pos;
  return DecodeUtf8(text, pos, &length);
}

}  // namespace

void AddedVocabulary::Trie::Insert(std::string_view key, int32_t token_index) {
  int32_t node = 0;
  for (char c : key) {
    const uint8_t b = static_cast<uint8_t>(c);
    auto it = nodes_[node].children.find(b);
    if (it == nodes_[node].children.end()) {
      nodes_.emplace_back();
      it = nodes_[node].children.emplace(b, static_cast<int32_t>(nodes_.size() - 1)).first;
    }
    node = it->second;
  }
  nodes_[node].token_index = token_index;  // a later token with the same content wins
  can_start_[static_cast<uint8_t>(key[0])] = true;
}

std::optional<std::pair<int32_t, size_t>> AddedVocabulary::Trie::LongestAt(std::string_view text,
                                                                           size_t pos) const {
  if (!can_start_[static_cast<uint8_t>(text[pos])]) return std::nullopt;
  std::optional<std::pair<int32_t, size_t>> best;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = nodes_[node].children.find(static_cast<uint8_t>(text[i]));
    if (it == nodes_[node].children.end()) break;
    node = it->second;
    if (nodes_[node].token_index >= 0) best.emplace(nodes_[node].token_index, i + 1 - pos);
  }
  return best;
}

absl::StatusOr<AddedVocabulary> AddedVocabulary::FromJson(const Json& json, std::string_view path,
                                                          const Normalizer* normalizer) {
  AddedVocabulary vocab;
  if (json.is_null()) return vocab;
  if (!json.is_array()) return JsonError(path, "expected an array");
  for (size_t i = 0; i < json.size(); ++i) {
    const std::string item_path = JsonIndex(path, i);
    const Json& item = json[i];
    if (!item.is_object()) return JsonError(item_path, "expected an object");
    AddedToken token;
    if (!item.contains("id")) return JsonError(item_path, "missing \"id\"");
    MMX_ASSIGN_OR_RETURN(token.id, JsonId(item["id"], JsonChild(item_path, "id")));
    MMX_ASSIGN_OR_RETURN(token.content, JsonString(item, "content", item_path));
    if (token.content.empty()) return JsonError(item_path, "empty \"content\"");
    MMX_ASSIGN_OR_RETURN(token.single_word, JsonBool(item, "single_word", false, item_path));
    MMX_ASSIGN_OR_RETURN(token.lstrip, JsonBool(item, "lstrip", false, item_path));
    MMX_ASSIGN_OR_RETURN(token.rstrip, JsonBool(item, "rstrip", false, item_path));
    MMX_ASSIGN_OR_RETURN(token.normalized, JsonBool(item, "normalized", true, item_path));
    MMX_ASSIGN_OR_RETURN(token.special, JsonBool(item, "special", false, item_path));
    const int32_t index = static_cast<int32_t>(vocab.tokens_.size());
    if (token.normalized) {
      std::string form = token.content;
      if (normalizer != nullptr) {
        MMX_ASSIGN_OR_RETURN(form, normalizer->Normalize(token.content));
      }
      if (!form.empty()) vocab.normalized_trie_.Insert(form, index);
    } else {
      vocab.raw_trie_.Insert(token.content, index);
    }
    vocab.by_id_[token.id] = vocab.tokens_.size();
    vocab.by_content_[token.content] = token.id;
    vocab.max_id_ = std::max(vocab.max_id_, token.id);
    vocab.tokens_.push_back(std::move(token));
  }
  return vocab;
}

std::vector<AddedVocabulary::Segment> AddedVocabulary::Split(std::string_view text, bool normalized_pass,
                                                             bool special) const {
  const Trie& trie = normalized_pass ? normalized_trie_ : raw_trie_;
  std::vector<Segment> segments;
  if (text.empty()) return segments;
  if (trie.empty()) {
    segments.push_back({text, std::nullopt});
    return segments;
  }
  size_t emitted = 0;  // text[..emitted] is already in segments
  size_t pos = 0;
  while (pos < text.size()) {
    const auto match = trie.LongestAt(text, pos);
    if (!match.has_value()) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[match->first];
    if (token.special && !special) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + match->second;
    pos = stop;
    if (token.single_word) {
      size_t unused;
      const bool glued_left = start > 0 && IsWordChar(CharBefore(text, start, &unused));
      size_t length;
      const bool glued_right = stop < text.size() && IsWordChar(DecodeUtf8(text, stop, &length));
      if (glued_left || glued_right) continue;
    }
    if (token.lstrip) {
      while (start > emitted) {
        size_t before;
        if (!IsWhiteSpace(CharBefore(text, start, &before))) break;
        start = before;
      }
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t length;
        if (!IsWhiteSpace(DecodeUtf8(text, stop, &length))) break;
        stop += length;
      }
      pos = stop;
    }
    if (start > emitted) segments.push_back({text.substr(emitted, start - emitted), std::nullopt});
    segments.push_back({text.substr(start, stop - start), token.id});
    emitted = stop;
  }
  if (emitted < text.size()) segments.push_back({text.substr(emitted), std::nullopt});
  return segments;
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(AsAbsl(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

}  // namespace mmx::tokenizer
