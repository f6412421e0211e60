#include "model/tokenizer/pre_tokenizers.h"

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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Pieces = std::vector<std::string>;

Pieces PreTokenize(const Json& json, const std::string& text) {
  absl::StatusOr<std::unique_ptr<PreTokenizer>> pre = ParsePreTokenizer(json, "pre_tokenizer");
  EXPECT_THAT(pre, IsOk());
  Pieces pieces = {text};
  if (pre.ok()) {
    EXPECT_THAT((*pre)->PreTokenize(&pieces), IsOk());
  }
  return pieces;
}

Json SplitOnDash(const std::string& behavior, bool invert = false) {
  return {{"type", "Split"},
          {"pattern", {{"String", "-"}}},
          {"behavior", behavior},
          {"invert", invert}};
}

// The examples of HF's SplitDelimiterBehavior documentation.
TEST(PreTokenizersTest, SplitBehaviours) {
  const std::string text = "the-final--countdown";
  EXPECT_THAT(PreTokenize(SplitOnDash("Removed"), text), ElementsAre("the", "final", "countdown"));
  EXPECT_THAT(PreTokenize(SplitOnDash("Isolated"), text),
              ElementsAre("the", "-", "final", "-", "-", "countdown"));
  EXPECT_THAT(PreTokenize(SplitOnDash("MergedWithPrevious"), text),
              ElementsAre("the-", "final-", "-", "countdown"));
  EXPECT_THAT(PreTokenize(SplitOnDash("MergedWithNext"), text),
              ElementsAre("the", "-final", "-", "-countdown"));
  EXPECT_THAT(PreTokenize(SplitOnDash("Contiguous"), text),
              ElementsAre("the", "-", "final", "--", "countdown"));
}

TEST(PreTokenizersTest, InvertSwapsMatchesAndGaps) {
  // Inverted, the words are the "matches" that Removed drops.
  EXPECT_THAT(PreTokenize(SplitOnDash("Removed", /*invert=*/true), "the-final--countdown"),
              ElementsAre("-", "-", "-"));
  EXPECT_THAT(PreTokenize(SplitOnDash("MergedWithPrevious", /*invert=*/true), "a-b"),
              ElementsAre("a", "-b"));
}

TEST(PreTokenizersTest, SplitWithRegex) {
  const Json split = {{"type", "Split"},
                      {"pattern", {{"Regex", "\\d+"}}},
                      {"behavior", "Removed"},
                      {"invert", false}};
  EXPECT_THAT(PreTokenize(split, "ab12cd345"), ElementsAre("ab", "cd"));
  EXPECT_THAT(PreTokenize(split, "123"), ElementsAre());
}

TEST(PreTokenizersTest, ByteLevelWithGpt2RegexAndPrefixSpace) {
  const Json with_prefix = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  const Json without = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  // ' ' is 'Ġ' (U+0120) and '\n' is 'Ċ' (U+010A) in GPT-2's byte alphabet.
  EXPECT_THAT(PreTokenize(with_prefix, "Hello world"), ElementsAre("\u0120Hello", "\u0120world"));
  EXPECT_THAT(PreTokenize(without, "Hello world"), ElementsAre("Hello", "\u0120world"));
  EXPECT_THAT(PreTokenize(with_prefix, " x"), ElementsAre("\u0120x"));  // already has one
  EXPECT_THAT(PreTokenize(without, "I'm here"), ElementsAre("I", "'m", "\u0120here"));
  EXPECT_THAT(PreTokenize(without, "a   b"), ElementsAre("a", "\u0120\u0120", "\u0120b"));
  EXPECT_THAT(PreTokenize(without, "x=1;\n"), ElementsAre("x", "=", "1", ";", "\u010A"));
  // Bytes above 0x7F map too: é is C3 A9 -> 'Ã' '©'.
  EXPECT_THAT(PreTokenize(without, "\u00E9"), ElementsAre("\u00C3\u00A9"));
}

TEST(PreTokenizersTest, ByteLevelWithoutRegexOnlyMapsBytes) {
  EXPECT_THAT(
      PreTokenize({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}},
                  "a b\n"),
      ElementsAre("a\u0120b\u010A"));
}

TEST(PreTokenizersTest, Digits) {
  EXPECT_THAT(PreTokenize({{"type", "Digits"}, {"individual_digits", true}}, "a123b"),
              ElementsAre("a", "1", "2", "3", "b"));
  EXPECT_THAT(PreTokenize({{"type", "Digits"}, {"individual_digits", false}}, "a123b45"),
              ElementsAre("a", "123", "b", "45"));
}

TEST(PreTokenizersTest, WhitespaceAndPunctuation) {
  EXPECT_THAT(PreTokenize({{"type", "Whitespace"}}, "Hey, friend!"),
              ElementsAre("Hey", ",", "friend", "!"));
  EXPECT_THAT(PreTokenize({{"type", "WhitespaceSplit"}}, "a  b\tc\u3000d"),
              ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(PreTokenize({{"type", "Punctuation"}, {"behavior", "Isolated"}}, "Hey, you!"),
              ElementsAre("Hey", ",", " you", "!"));
}

TEST(PreTokenizersTest, SequenceRunsEachStepOnEveryPiece) {
  const Json sequence = {
      {"type", "Sequence"},
      {"pretokenizers",
       {SplitOnDash("Isolated"), {{"type", "Digits"}, {"individual_digits", true}}}}};
  EXPECT_THAT(PreTokenize(sequence, "a-12"), ElementsAre("a", "-", "1", "2"));
}

TEST(PreTokenizersTest, ErrorsNameThePath) {
  EXPECT_THAT(ParsePreTokenizer(SplitOnDash("Sideways"), "pre_tokenizer"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pre_tokenizer.behavior: unknown split behavior \"Sideways\"")));
  EXPECT_THAT(ParsePreTokenizer(
                  {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}},
                  "pre_tokenizer"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pre_tokenizer.pattern.Regex: regex /(a/ does not compile")));
  EXPECT_THAT(
      ParsePreTokenizer({{"type", "Metaspace"}}, "pre_tokenizer"),
      StatusIs(absl::StatusCode::kUnimplemented, "pre_tokenizer: unsupported type \"Metaspace\""));
}

}  // namespace
}  // namespace mmx::tokenizer
