#include "model/tokenizer/regex.h"

#include <unicode/parseerr.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>
#include <unicode/utypes.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "model/tokenizer/absl_compat.h"
#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {

struct Regex::Compiled {
  std::unique_ptr<icu::RegexPattern> pattern;
};

std::string TranslateOnigurumaToIcu(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c != '\\' || i + 1 == pattern.size()) {
      out.push_back(c);
      continue;
    }
    // An escape: look at what it escapes, and copy the pair through unless it is \s or \S.
    // Taking the pair at once keeps `\\s` (a backslash, then "s") intact.
    const char next = pattern[i + 1];
    if (next == 's') {
      out += "\\p{White_Space}";
    } else if (next == 'S') {
      out += "\\P{White_Space}";
    } else {
      out.push_back(c);
      out.push_back(next);
    }
    ++i;
  }
  return out;
}

namespace {

// A search that fails: ICU's time limit (a pattern that backtracks exponentially on this text)
// or an internal error. Names the pattern, not the text, which may be a user's.
absl::Status Failed(std::string_view pattern, std::string_view text, UErrorCode status) {
  if (status == U_REGEX_TIME_OUT) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the tokenizer's regex /", AsAbsl(pattern.substr(0, 60)), pattern.size() > 60 ? "..." : "",
        "/ gave up on a text of ", text.size(),
        " bytes: it backtracks without bound (fix the pattern in tokenizer.json)"));
  }
  return absl::InternalError(absl::StrCat("the tokenizer's regex /", AsAbsl(pattern.substr(0, 60)),
                                          "/ failed: ", u_errorName(status)));
}

}  // namespace

Regex::Regex(std::string pattern, std::unique_ptr<Compiled> compiled)
    : pattern_(std::move(pattern)), compiled_(std::move(compiled)) {}

Regex::~Regex() = default;

absl::StatusOr<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern) {
  const std::string translated = TranslateOnigurumaToIcu(pattern);
  const icu::UnicodeString source = icu::UnicodeString::fromUTF8(translated);
  UErrorCode status = U_ZERO_ERROR;
  UParseError parse_error;
  auto compiled = std::make_unique<Compiled>();
  compiled->pattern.reset(icu::RegexPattern::compile(source, UREGEX_MULTILINE | UREGEX_UNIX_LINES,
                                                     parse_error, status));
  if (U_FAILURE(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("regex /", AsAbsl(pattern), "/ does not compile: ", u_errorName(status),
                     " near offset ", parse_error.offset, " (of the ICU form /", translated, "/)"));
  }
  return std::unique_ptr<Regex>(new Regex(std::string(pattern), std::move(compiled)));
}

absl::StatusOr<std::vector<Regex::Match>> Regex::FindAll(std::string_view text) const {
  // UTF-16 copy of the text, and for each UTF-16 index the byte offset it came from, so that
  // match offsets map back exactly (a supplementary character is two UTF-16 units).
  std::u16string utf16;
  std::vector<uint32_t> byte_offset;
  utf16.reserve(text.size());
  byte_offset.reserve(text.size() + 1);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t length;
    const char32_t cp = DecodeUtf8(text, pos, &length);
    if (cp < 0x10000) {
      utf16.push_back(static_cast<char16_t>(cp));
      byte_offset.push_back(static_cast<uint32_t>(pos));
    } else {
      utf16.push_back(static_cast<char16_t>(0xD7C0 + (cp >> 10)));
      utf16.push_back(static_cast<char16_t>(0xDC00 | (cp & 0x3FF)));
      byte_offset.push_back(static_cast<uint32_t>(pos));
      byte_offset.push_back(static_cast<uint32_t>(pos));  // never a match boundary
    }
    pos += length;
  }
  byte_offset.push_back(static_cast<uint32_t>(text.size()));

  std::vector<Match> matches;
  // Read-only alias: ICU reads our buffer without copying it.
  const icu::UnicodeString input(false, utf16.data(), static_cast<int32_t>(utf16.size()));
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexMatcher> matcher(compiled_->pattern->matcher(input, status));
  if (U_FAILURE(status)) return Failed(pattern_, text, status);
  // NOTE: ICU caps its backtracking stack at 8 MB by default and fails the search past that
  // (long runs under `\s+(?!\S)`). Unbounded keeps results exact; memory stays linear in the
  // text's length. The time limit is what bounds a pattern that backtracks exponentially.
  matcher->setStackLimit(0, status);
  matcher->setTimeLimit(kTimeLimitUnits, status);
  while (matcher->find(status)) {
    const int32_t begin = matcher->start(status);
    const int32_t end = matcher->end(status);
    if (U_FAILURE(status)) break;
    matches.push_back({byte_offset[begin], byte_offset[end]});
  }
  if (U_FAILURE(status)) return Failed(pattern_, text, status);
  return matches;
}

}  // namespace mmx::tokenizer
