#include "model/tokenizer/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace mmx::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, DecodesOneToFourByteCharacters) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  size_t length;
  EXPECT_EQ(DecodeUtf8(text, 0, &length), U'a');
  EXPECT_EQ(length, 1u);
  EXPECT_EQ(DecodeUtf8(text, 1, &length), U'\u00E9');
  EXPECT_EQ(length, 2u);
  EXPECT_EQ(DecodeUtf8(text, 3, &length), U'\u20AC');
  EXPECT_EQ(length, 3u);
  EXPECT_EQ(DecodeUtf8(text, 6, &length), U'\U0001F600');
  EXPECT_EQ(length, 4u);
}

TEST(Utf8Test, ValidTextIsUnchangedIncludingNul) {
  const std::string text("a\0b\xE4\xB8\xAD", 6);
  EXPECT_TRUE(IsValidUtf8(text));
  EXPECT_EQ(ToValidUtf8(text), text);
}

// Each maximal ill-formed subpart becomes one U+FFFD (Unicode §3.9), as Rust's lossy decode.
TEST(Utf8Test, InvalidBytesBecomeOneReplacementPerMaximalSubpart) {
  EXPECT_EQ(ToValidUtf8("a\xFF"
                        "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(ToValidUtf8("\xF0\x9F\x98"), kFffd);  // a truncated 4-byte sequence: one
  EXPECT_EQ(ToValidUtf8("\xF0\x9F\x98"
                        "a"),
            kFffd + "a");
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);              // a surrogate: three
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), kFffd + kFffd);                          // an overlong '/'
  EXPECT_EQ(ToValidUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(ToValidUtf8("\x80"), kFffd);
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));
}

TEST(Utf8Test, AppendEncodesScalarValuesAndReplacesOthers) {
  std::string out;
  AppendUtf8(U'\U0001F600', &out);
  EXPECT_EQ(out, "\xF0\x9F\x98\x80");
  out.clear();
  AppendUtf8(0xD800, &out);
  EXPECT_EQ(out, kFffd);
}

TEST(Utf8Test, WhiteSpaceIsTheUnicodeProperty) {
  for (char32_t cp : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                      0x2028, 0x2029, 0x202F, 0x205F, 0x3000}) {
    EXPECT_TRUE(IsWhiteSpace(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
  for (char32_t cp : {0x08, 0x1F, 0x21, 0x200B, 0xFEFF, 0x180E, 0x1F600}) {
    EXPECT_FALSE(IsWhiteSpace(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
}

}  // namespace
}  // namespace mmx::tokenizer
