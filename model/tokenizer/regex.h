// The regex adaptor: tokenizer.json patterns are written for Oniguruma (the Rust library's
// engine); we run them on ICU's engine, which has what they need and RE2 lacks: look-ahead
// (`\s+(?!\S)`), inline flags (`(?i:...)`), Unicode properties (`\p{L}`), bounded repetition
// and leftmost-first (backtracking) alternation.
//
// Where the two dialects differ, patterns are rewritten before compiling:
//  - `\s` / `\S` (also inside classes) become `\p{White_Space}` / `\P{White_Space}`: ICU's `\s`
//    is [\t\n\f\r\p{Z}], which misses U+000B and U+0085; Oniguruma's is White_Space.
//  - `^`, `$` are line anchors and `.` stops only at "\n", as in Oniguruma's Ruby syntax
//    (UREGEX_MULTILINE | UREGEX_UNIX_LINES).
// Other escapes (`\w`, `\d`, `\p{..}`) have the same meaning in both for the patterns real
// tokenizers use and are passed through.
//
// Matching runs on UTF-16 and reports byte offsets into the caller's UTF-8 text.
// A compiled Regex is immutable and safe to use from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mmx::tokenizer {

// The pattern as ICU will see it (exposed for tests).
std::string TranslateOnigurumaToIcu(std::string_view pattern);

class Regex {
 public:
  struct Match {
    size_t begin;  // byte offsets into the searched text
    size_t end;
  };

  // InvalidArgument (with ICU's error name and the offset) if the pattern does not compile.
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(std::string_view pattern);
  ~Regex();

  // Every non-overlapping match, left to right. `text` must be valid UTF-8. ResourceExhausted
  // when one search runs past kTimeLimitUnits (a pattern such as `(a+)+$` backtracks
  // exponentially): the tokenizer's file is at fault, and the caller fails that one text.
  absl::StatusOr<std::vector<Match>> FindAll(std::string_view text) const;

  // ICU's unit is a fixed count of matcher steps (10,000; about 0.12 ms of CPU on the CI
  // machine), so the limit is deterministic for a given pattern and text. Real tokenizer
  // patterns take a few steps per character; a 1 MiB run of spaces under the GPT-2 pattern
  // takes about 200 units.
  static constexpr int32_t kTimeLimitUnits = 5000;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;  // the ICU pattern; kept out of this header so users need no ICU includes
  Regex(std::string pattern, std::unique_ptr<Compiled> compiled);

  std::string pattern_;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace mmx::tokenizer
