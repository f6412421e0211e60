// tokenizer.json "normalizer": text rewritten before pre-tokenization, applied to each stretch
// of text between added tokens (added tokens with normalized: false are cut out first).
//
// Supported: NFC, NFD, NFKC, NFKD (ICU's Normalizer2), Lowercase (full Unicode lowercasing,
// root locale, like Rust's str::to_lowercase), Strip, StripAccents, Replace, Prepend and
// Sequence (which may be empty). Not supported: BertNormalizer, Precompiled, NMT (Unimplemented
// naming the JSON path). We never track offsets: Encode returns ids only.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/tokenizer/json_fields.h"

namespace mmx::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` is valid UTF-8 and so is the result. Thread-safe. Fails only where a Replace
  // normalizer's regex gives up (Regex::FindAll).
  virtual absl::StatusOr<std::string> Normalize(std::string_view text) const = 0;
};

// The normalizer described by `json` (an object with "type"); `path` names it in errors.
absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& json,
                                                            std::string_view path);

}  // namespace mmx::tokenizer
