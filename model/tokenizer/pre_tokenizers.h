// tokenizer.json "pre_tokenizer": cuts normalized text into pieces ("words") that the BPE model
// then encodes one at a time, and may rewrite them (ByteLevel maps bytes to GPT-2's alphabet).
//
// Supported: Split (String or Regex pattern; behaviours Removed, Isolated, MergedWithPrevious,
// MergedWithNext, Contiguous; invert), ByteLevel (add_prefix_space, use_regex with GPT-2's
// pattern), Digits, Punctuation, Whitespace, WhitespaceSplit and Sequence. Each step runs on
// every piece the previous step produced; empty pieces are dropped, as in HF.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/json_fields.h"
#include "model/tokenizer/pattern.h"

namespace mmx::tokenizer {

// What a split does with the pieces its pattern matches (HF's SplitDelimiterBehavior), shown
// on "the-final--countdown" split on "-":
//   kRemoved            the | final | countdown
//   kIsolated           the | - | final | - | - | countdown
//   kMergedWithPrevious the- | final- | - | countdown
//   kMergedWithNext     the | -final | - | -countdown
//   kContiguous         the | - | final | -- | countdown
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// `text` cut at `spans` (Pattern::Partition's output) following `behavior`; no empty pieces.
std::vector<std::string> SplitSpans(std::string_view text, std::vector<Pattern::Span> spans,
                                    SplitBehavior behavior);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `*pieces` (non-empty, valid UTF-8) by their split/rewritten pieces, in order.
  // Thread-safe. Fails only where a regex gives up (Regex::FindAll).
  virtual absl::Status PreTokenize(std::vector<std::string>* pieces) const = 0;
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& json,
                                                                std::string_view path);

}  // namespace mmx::tokenizer
