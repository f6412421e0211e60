// UTF-8 helpers shared by every tokenizer stage: decoding one code point, lossy repair of
// invalid input, encoding, and the Unicode White_Space set.
//
// The tokenizer works on valid UTF-8 only. Encode repairs its input once, up front
// (ToValidUtf8), so the normalizers, the regex adaptor and the BPE model never see a broken
// sequence. Decoding bytes back to text uses the same repair, which is what Hugging Face's
// `String::from_utf8_lossy` does: each maximal ill-formed subpart becomes one U+FFFD
// (Unicode §3.9, "U+FFFD Substitution of Maximal Subparts").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mmx::tokenizer {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes the code point at text[pos]. On success returns it and sets *length to its byte
// length (1..4). On an ill-formed sequence returns kReplacementChar and sets *length to the
// length of the maximal subpart to replace (at least 1), so that callers always advance.
// `*valid` (optional) tells the two apart.
char32_t DecodeUtf8(std::string_view text, size_t pos, size_t* length, bool* valid = nullptr);

// Appends the UTF-8 encoding of `cp` (which must be a scalar value: not a surrogate, at most
// U+10FFFF; anything else is written as U+FFFD).
void AppendUtf8(char32_t cp, std::string* out);

// True if `text` is well-formed UTF-8 (no surrogates, no overlongs, nothing past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// `bytes` with every maximal ill-formed subpart replaced by U+FFFD; valid input is returned
// unchanged. Like Rust's String::from_utf8_lossy.
std::string ToValidUtf8(std::string_view bytes);

// Unicode White_Space (PropList.txt), which is what Oniguruma's and Rust's `\s` and
// `char::is_whitespace` use: U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000. NOTE: not U+200B and not U+FEFF.
bool IsWhiteSpace(char32_t cp);

}  // namespace mmx::tokenizer
