#include "model/tokenizer/regex.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

// (begin, end) byte offsets of every match.
std::vector<std::pair<size_t, size_t>> Matches(const std::string& pattern,
                                               const std::string& text) {
  absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile(pattern);
  EXPECT_THAT(regex, IsOk());
  std::vector<std::pair<size_t, size_t>> out;
  if (!regex.ok()) return out;
  absl::StatusOr<std::vector<Regex::Match>> matches = (*regex)->FindAll(text);
  EXPECT_THAT(matches, IsOk());
  if (!matches.ok()) return out;
  for (const Regex::Match& m : *matches) out.emplace_back(m.begin, m.end);
  return out;
}

using Ranges = std::vector<std::pair<size_t, size_t>>;

TEST(RegexTest, TranslatesWhitespaceClassesInsideAndOutsideBrackets) {
  EXPECT_EQ(TranslateOnigurumaToIcu(R"(\s+(?!\S)|[^\s\p{L}])"),
            R"(\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}])");
  // An escaped backslash followed by "s" is not \s.
  EXPECT_EQ(TranslateOnigurumaToIcu(R"(\\s\p{N})"), R"(\\s\p{N})");
}

// Oniguruma's \s: U+000B and U+0085 are spaces, U+FEFF and U+200B are not.
TEST(RegexTest, WhitespaceIsUnicodeWhiteSpace) {
  const std::string text = "a\u0085b\vc\uFEFFd\u200Be";
  EXPECT_EQ(Matches(R"(\s)", text), (Ranges{{1, 3}, {4, 5}}));
}

TEST(RegexTest, NegativeLookaheadLeavesTheLastSpaceForTheNextWord) {
  EXPECT_EQ(Matches(R"(\s+(?!\S)|\s+)", "a   b"), (Ranges{{1, 3}, {3, 4}}));
  EXPECT_EQ(Matches(R"(\s+(?!\S)|\s+)", "a   "), (Ranges{{1, 4}}));
}

TEST(RegexTest, AlternationIsLeftmostFirstNotLongest) {
  EXPECT_EQ(Matches("a|ab", "ab"), (Ranges{{0, 1}}));
}

TEST(RegexTest, InlineCaseInsensitiveGroup) {
  EXPECT_EQ(Matches("(?i:'s|'ll)", "it'S we'LL"), (Ranges{{2, 4}, {7, 10}}));
}

TEST(RegexTest, BoundedRepetitionGroupsDigitsFromTheLeft) {
  EXPECT_EQ(Matches(R"(\p{N}{1,3})", "1234567"), (Ranges{{0, 3}, {3, 6}, {6, 7}}));
}

TEST(RegexTest, OffsetsAreUtf8BytesAroundSupplementaryCharacters) {
  // 😀 is 4 UTF-8 bytes and 2 UTF-16 units.
  EXPECT_EQ(Matches(R"(\p{L}+)", "\U0001F600ab\U0001F600c"), (Ranges{{4, 6}, {10, 11}}));
  EXPECT_EQ(Matches(R"(\p{So})", "x\U0001F600"), (Ranges{{1, 5}}));
}

TEST(RegexTest, LiteralLineBreaksAndNonAsciiRangesInClasses) {
  EXPECT_EQ(Matches("[\r\n]+", "a\r\nb"), (Ranges{{1, 3}}));
  EXPECT_EQ(Matches("[\u4e00-\u9fa5]+", "ab\u4e2d\u6587c"), (Ranges{{2, 8}}));
}

TEST(RegexTest, PunctuationClassWithEscapes) {
  // DeepSeek-V3's class: & $ { } | and escaped [ \ ] are literals.
  const std::string cls = R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+)";
  EXPECT_EQ(Matches(cls, "&amp {x $y \\z"), (Ranges{{0, 4}, {5, 7}, {8, 10}, {11, 13}}));
}

TEST(RegexTest, MatchesAcrossNulBytes) {
  EXPECT_EQ(Matches(R"(\p{L}+)", std::string("ab\0cd", 5)), (Ranges{{0, 2}, {3, 5}}));
}

TEST(RegexTest, BadPatternIsInvalidArgument) {
  EXPECT_THAT(Regex::Compile("(ab"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not compile")));
}

TEST(RegexTest, ExponentialBacktrackingGivesUpWithResourceExhausted) {
  // `(a+)+$` on a's and then a non-a tries every split of the a's: 2^40 paths without a limit
  // (over 30 s at 30 a's). The time limit ends it in under a second.
  absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile("(a+)+$");
  ASSERT_THAT(regex, IsOk());
  EXPECT_THAT((*regex)->FindAll(std::string(40, 'a') + "!"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("/(a+)+$/ gave up on a text of 41 bytes")));
  // The same pattern on text it settles quickly still matches.
  EXPECT_EQ(Matches("(a+)+$", "baaa"), (Ranges{{1, 4}}));
}

TEST(RegexTest, LongTextUnderRealPatternStaysWithinTheLimit) {
  // The GPT-2/MiniMax split pattern's slowest case: a long run of spaces before a letter
  // (`\s+(?!\S)` backs off one space). One search per piece, each well inside the limit.
  const std::string pattern =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  const std::string text = std::string(1 << 20, ' ') + "x";
  absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile(pattern);
  ASSERT_THAT(regex, IsOk());
  absl::StatusOr<std::vector<Regex::Match>> matches = (*regex)->FindAll(text);
  ASSERT_THAT(matches, IsOk());
  EXPECT_EQ(matches->size(), 2u);  // (1 MiB - 1) spaces, then " x"
}

}  // namespace
}  // namespace mmx::tokenizer
