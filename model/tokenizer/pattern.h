// A tokenizer.json "pattern" object, used by the Split pre-tokenizer, the Replace normalizer
// and the Replace decoder: {"String": "literal"} or {"Regex": "oniguruma pattern"}.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/json_fields.h"
#include "model/tokenizer/regex.h"

namespace mmx::tokenizer {

class Pattern {
 public:
  // A consecutive piece of the searched text: a match of the pattern or a gap between matches.
  struct Span {
    size_t begin;
    size_t end;
    bool is_match;
  };

  // InvalidArgument naming `path` for anything but exactly one of "String" / "Regex".
  static absl::StatusOr<Pattern> FromJson(const Json& json, std::string_view path);
  static Pattern Literal(std::string literal);
  static absl::StatusOr<Pattern> FromRegex(std::string_view regex);

  // `text` (valid UTF-8) cut into matches and the gaps between them, left to right, covering
  // all of it with no empty gap. An empty literal matches nothing. Fails only as
  // Regex::FindAll does (a regex that backtracks without bound).
  absl::StatusOr<std::vector<Span>> Partition(std::string_view text) const;

  // `text` with every match replaced by `content`; fails as Partition does.
  absl::StatusOr<std::string> ReplaceAll(std::string_view text, std::string_view content) const;

 private:
  absl::StatusOr<std::vector<Regex::Match>> FindAll(std::string_view text) const;

  std::string literal_;
  std::shared_ptr<const Regex> regex_;  // set for a regex pattern; shared by copies
};

}  // namespace mmx::tokenizer
