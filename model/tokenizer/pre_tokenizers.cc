#include "model/tokenizer/pre_tokenizers.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

#include "base/status_macros.h"
#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {
namespace {

// GPT-2's pre-tokenizer pattern, as HF's ByteLevel uses it when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Each character for which `is_match` holds is one match (HF's char-predicate patterns).
std::vector<Pattern::Span> CharSpans(std::string_view text,
                                     const std::function<bool(char32_t)>& is_match) {
  std::vector<Pattern::Span> spans;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t length;
    const bool match = is_match(DecodeUtf8(text, pos, &length));
    if (match || spans.empty() || spans.back().is_match) {
      spans.push_back({pos, pos + length, match});
    } else {
      spans.back().end = pos + length;  // extend the current gap
    }
    pos += length;
  }
  return spans;
}

// Applies a span-producing split to every piece.
absl::Status SplitEach(
    std::vector<std::string>* pieces, SplitBehavior behavior,
    const std::function<absl::StatusOr<std::vector<Pattern::Span>>(std::string_view)>& spans_of) {
  std::vector<std::string> out;
  out.reserve(pieces->size());
  for (const std::string& piece : *pieces) {
    MMX_ASSIGN_OR_RETURN(std::vector<Pattern::Span> spans, spans_of(piece));
    for (std::string& part : SplitSpans(piece, std::move(spans), behavior)) {
      out.push_back(std::move(part));
    }
  }
  *pieces = std::move(out);
  return absl::OkStatus();
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    return SplitEach(pieces, behavior_,
                     [this](std::string_view text) -> absl::StatusOr<std::vector<Pattern::Span>> {
                       MMX_ASSIGN_OR_RETURN(std::vector<Pattern::Span> spans,
                                            pattern_.Partition(text));
                       if (invert_) {
                         for (Pattern::Span& span : spans) span.is_match = !span.is_match;
                       }
                       return spans;
                     });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<Pattern> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    if (add_prefix_space_) {
      for (std::string& piece : *pieces) {
        if (!piece.empty() && piece[0] != ' ') piece.insert(piece.begin(), ' ');
      }
    }
    if (regex_.has_value()) {
      MMX_RETURN_IF_ERROR(SplitEach(pieces, SplitBehavior::kIsolated, [this](std::string_view text) {
        return regex_->Partition(text);
      }));
    }
    for (std::string& piece : *pieces) piece = BytesToByteLevel(piece);
    return absl::OkStatus();
  }

 private:
  bool add_prefix_space_;
  std::optional<Pattern> regex_;
};

class CharPredicatePreTokenizer : public PreTokenizer {
 public:
  CharPredicatePreTokenizer(std::function<bool(char32_t)> is_match, SplitBehavior behavior)
      : is_match_(std::move(is_match)), behavior_(behavior) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    return SplitEach(pieces, behavior_, [this](std::string_view text) {
      return absl::StatusOr<std::vector<Pattern::Span>>(CharSpans(text, is_match_));
    });
  }

 private:
  std::function<bool(char32_t)> is_match_;
  SplitBehavior behavior_;
};

// Keeps the pattern's matches and drops the gaps (HF's Whitespace: `\w+|[^\w\s]+`).
class KeepMatchesPreTokenizer : public PreTokenizer {
 public:
  explicit KeepMatchesPreTokenizer(Pattern pattern) : pattern_(std::move(pattern)) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    return SplitEach(pieces, SplitBehavior::kRemoved,
                     [this](std::string_view text) -> absl::StatusOr<std::vector<Pattern::Span>> {
                       MMX_ASSIGN_OR_RETURN(std::vector<Pattern::Span> spans,
                                            pattern_.Partition(text));
                       for (Pattern::Span& span : spans) span.is_match = !span.is_match;
                       return spans;
                     });
  }

 private:
  Pattern pattern_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    for (const auto& step : steps_) MMX_RETURN_IF_ERROR(step->PreTokenize(pieces));
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

bool IsNumeric(char32_t cp) {  // Rust's char::is_numeric: Nd, Nl, No
  return (U_GET_GC_MASK(cp) & (U_GC_ND_MASK | U_GC_NL_MASK | U_GC_NO_MASK)) != 0;
}

bool IsPunctuation(char32_t cp) {  // ASCII punctuation (incl. symbols like '$') or category P
  if (cp < 0x80) {
    return (cp >= '!' && cp <= '/') || (cp >= ':' && cp <= '@') || (cp >= '[' && cp <= '`') ||
           (cp >= '{' && cp <= '~');
  }
  return (U_GET_GC_MASK(cp) & U_GC_P_MASK) != 0;
}

absl::StatusOr<SplitBehavior> ParseBehavior(const Json& json, std::string_view path,
                                            std::optional<SplitBehavior> default_value) {
  if (default_value.has_value() && (!json.contains("behavior") || json["behavior"].is_null())) {
    return *default_value;
  }
  MMX_ASSIGN_OR_RETURN(const std::string name, JsonString(json, "behavior", path));
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return JsonError(JsonChild(path, "behavior"),
                   "unknown split behavior \"" + name +
                       "\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or "
                       "Contiguous)");
}

}  // namespace

std::vector<std::string> SplitSpans(std::string_view text, std::vector<Pattern::Span> spans,
                                    SplitBehavior behavior) {
  // First decide the pieces as (begin, end, removed) ranges, then cut the text once.
  struct Piece {
    size_t begin, end;
    bool removed;
  };
  std::vector<Piece> pieces;
  pieces.reserve(spans.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
    case SplitBehavior::kRemoved:
      for (const Pattern::Span& s : spans) {
        pieces.push_back({s.begin, s.end, behavior == SplitBehavior::kRemoved && s.is_match});
      }
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Pattern::Span& s : spans) {
        if (s.is_match && previous_match && !pieces.empty()) {
          pieces.back().end = s.end;
        } else {
          pieces.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      // A match joins the gap before it; a match right after a match stands alone.
      bool previous_match = false;
      for (const Pattern::Span& s : spans) {
        if (s.is_match && !previous_match && !pieces.empty()) {
          pieces.back().end = s.end;
        } else {
          pieces.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      // The mirror image: walk right to left, a match joins the piece after it.
      bool next_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !next_match && !pieces.empty()) {
          pieces.back().begin = it->begin;
        } else {
          pieces.push_back({it->begin, it->end, false});
        }
        next_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
  }
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (const Piece& p : pieces) {
    if (!p.removed && p.end > p.begin) out.emplace_back(text.substr(p.begin, p.end - p.begin));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& json,
                                                                std::string_view path) {
  MMX_ASSIGN_OR_RETURN(const std::string type, JsonType(json, path));
  if (type == "Split") {
    MMX_ASSIGN_OR_RETURN(const Json* pattern_json, JsonObject(json, "pattern", path));
    MMX_ASSIGN_OR_RETURN(Pattern pattern,
                         Pattern::FromJson(*pattern_json, JsonChild(path, "pattern")));
    MMX_ASSIGN_OR_RETURN(const SplitBehavior behavior, ParseBehavior(json, path, std::nullopt));
    MMX_ASSIGN_OR_RETURN(const bool invert, JsonBool(json, "invert", false, path));
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert);
  }
  if (type == "ByteLevel") {
    MMX_ASSIGN_OR_RETURN(const bool add_prefix_space,
                         JsonBool(json, "add_prefix_space", true, path));
    MMX_ASSIGN_OR_RETURN(const bool use_regex, JsonBool(json, "use_regex", true, path));
    std::optional<Pattern> regex;
    if (use_regex) {
      MMX_ASSIGN_OR_RETURN(regex, Pattern::FromRegex(kGpt2Pattern));
    }
    return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, std::move(regex));
  }
  if (type == "Digits") {
    MMX_ASSIGN_OR_RETURN(const bool individual, JsonBool(json, "individual_digits", false, path));
    return std::make_unique<CharPredicatePreTokenizer>(
        IsNumeric, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }
  if (type == "Punctuation") {
    MMX_ASSIGN_OR_RETURN(const SplitBehavior behavior,
                         ParseBehavior(json, path, SplitBehavior::kIsolated));
    return std::make_unique<CharPredicatePreTokenizer>(IsPunctuation, behavior);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<CharPredicatePreTokenizer>(IsWhiteSpace, SplitBehavior::kRemoved);
  }
  if (type == "Whitespace") {
    MMX_ASSIGN_OR_RETURN(Pattern pattern, Pattern::FromRegex(R"(\w+|[^\w\s]+)"));
    return std::make_unique<KeepMatchesPreTokenizer>(std::move(pattern));
  }
  if (type == "Sequence") {
    MMX_ASSIGN_OR_RETURN(const Json* list, JsonArray(json, "pretokenizers", path));
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      MMX_ASSIGN_OR_RETURN(
          std::unique_ptr<PreTokenizer> step,
          ParsePreTokenizer((*list)[i], JsonIndex(JsonChild(path, "pretokenizers"), i)));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  return UnsupportedType(path, type);
}

}  // namespace mmx::tokenizer
