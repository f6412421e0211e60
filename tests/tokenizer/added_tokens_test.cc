// Added tokens: matched before normalization, leftmost-longest, with lstrip / rstrip /
// single_word / normalized. The model below has no pre-tokenizer and no merges, so every
// character is its own token and the effect of each option shows directly.
#include "model/tokenizer/added_tokens.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace mmx::tokenizer {
namespace {

using ::testing::ElementsAre;

constexpr int kA = 0, kB = 1, kSpace = 2, kC = 3;

std::unique_ptr<Tokenizer> WithAdded(std::vector<TestJson> added, TestJson normalizer = nullptr) {
  TestJson json = TokenizerWith(BpeModel({"a", "b", " ", "c"}, {}));
  json["added_tokens"] = added;
  json["normalizer"] = normalizer;
  return Build(json);
}

TestJson Mask(bool lstrip, bool rstrip) {
  TestJson token = Added(10, "<m>");
  token["lstrip"] = lstrip;
  token["rstrip"] = rstrip;
  return token;
}

TEST(AddedTokensTest, StripOptionsTakeTheSurroundingSpaces) {
  auto plain = WithAdded({Mask(false, false)});
  auto left = WithAdded({Mask(true, false)});
  auto right = WithAdded({Mask(false, true)});
  auto both = WithAdded({Mask(true, true)});
  ASSERT_TRUE(plain && left && right && both);
  EXPECT_THAT(*plain->Encode("a <m> b"), ElementsAre(kA, kSpace, 10, kSpace, kB));
  EXPECT_THAT(*left->Encode("a  <m> b"), ElementsAre(kA, 10, kSpace, kB));
  EXPECT_THAT(*right->Encode("a <m>  b"), ElementsAre(kA, kSpace, 10, kB));
  EXPECT_THAT(*both->Encode("a <m> b"), ElementsAre(kA, 10, kB));
  EXPECT_THAT(*both->Encode("<m><m>"), ElementsAre(10, 10));
}

TEST(AddedTokensTest, SingleWordOnlyMatchesWholeWords) {
  TestJson ab = Added(11, "ab", /*special=*/false);
  auto anywhere = WithAdded({ab});
  ab["single_word"] = true;
  auto whole = WithAdded({ab});
  ASSERT_TRUE(anywhere && whole);
  EXPECT_THAT(*anywhere->Encode("ab cab"), ElementsAre(11, kSpace, kC, 11));
  EXPECT_THAT(*whole->Encode("ab cab"), ElementsAre(11, kSpace, kC, kA, kB));
  EXPECT_THAT(*whole->Encode("abc"), ElementsAre(kA, kB, kC));
}

TEST(AddedTokensTest, LeftmostThenLongest) {
  auto tokenizer =
      WithAdded({Added(11, "ab", false), Added(12, "abc", false), Added(13, "bc", false)});
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(*tokenizer->Encode("abcab"), ElementsAre(12, 11));
  EXPECT_THAT(*tokenizer->Encode("cabc"), ElementsAre(kC, 12));
  EXPECT_THAT(*tokenizer->Encode("cbc"), ElementsAre(kC, 13));
}

TEST(AddedTokensTest, NormalizedTokensMatchTheNormalizedText) {
  const TestJson lowercase = {{"type", "Lowercase"}};
  TestJson ab = Added(11, "AB", false);
  auto raw = WithAdded({ab}, lowercase);
  ab["normalized"] = true;
  auto normalized = WithAdded({ab}, lowercase);
  ASSERT_TRUE(raw && normalized);
  // Raw matching sees "AB" before lowercasing; normalized matching sees "ab" against "ab".
  EXPECT_THAT(*raw->Encode("AB"), ElementsAre(11));
  EXPECT_THAT(*raw->Encode("Ab"), ElementsAre(kA, kB));
  EXPECT_THAT(*normalized->Encode("Ab"), ElementsAre(11));
}

TEST(AddedTokensTest, DecodeEmitsContentAndSkipsOnlySpecialTokens) {
  auto tokenizer =
      WithAdded({Added(10, "<s>", /*special=*/true), Added(11, "<t>", /*special=*/false)});
  ASSERT_TRUE(tokenizer);
  // No decoder: HF joins tokens with spaces.
  EXPECT_EQ(tokenizer->Decode({10, kA, 11, kB}), "<s> a <t> b");
  EXPECT_EQ(tokenizer->Decode({10, kA, 11, kB}, /*skip_special_tokens=*/true), "a <t> b");
  EXPECT_TRUE(tokenizer->IsSpecial(10));
  EXPECT_FALSE(tokenizer->IsSpecial(11));
  EXPECT_FALSE(tokenizer->IsSpecial(kA));
  EXPECT_EQ(tokenizer->TokenToId("<t>"), 11);
  EXPECT_EQ(tokenizer->IdToToken(10), "<s>");
  EXPECT_EQ(tokenizer->vocab_size(), 12);
  EXPECT_FALSE(tokenizer->IsDefined(5));  // a hole between the vocabulary and the added tokens
}

TEST(AddedTokensTest, PartialTokensAreOrdinaryText) {
  auto tokenizer = WithAdded({Added(10, "<m>")});
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(*tokenizer->Encode("<m"), ElementsAre());  // '<' and 'm' are not in the vocabulary
  EXPECT_THAT(*tokenizer->Encode("a<m>"), ElementsAre(kA, 10));
}

}  // namespace
}  // namespace mmx::tokenizer
