// The BPE model through the whole tokenizer, on hand-made vocabularies whose results can be
// worked out on paper.
#include "model/tokenizer/bpe.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(BpeTest, BothMergeFormsAreTheSame) {
  TestJson pairs = BpeModel({"a", "b", "c", "ab", "abc"}, {});
  // (Spelled out: nlohmann reads {{"a", "b"}, ...} as an object.)
  pairs["merges"] = TestJson::array({TestJson::array({"a", "b"}), TestJson::array({"ab", "c"})});
  auto from_strings = Build(TokenizerWith(BpeModel({"a", "b", "c", "ab", "abc"}, {"a b", "ab c"})));
  auto from_pairs = Build(TokenizerWith(pairs));
  ASSERT_TRUE(from_strings && from_pairs);
  EXPECT_THAT(*from_strings->Encode("abc"), ElementsAre(4));
  EXPECT_THAT(*from_pairs->Encode("abc"), ElementsAre(4));
  EXPECT_THAT(*from_pairs->Encode("cab"), ElementsAre(2, 3));
}

TEST(BpeTest, LowestRankMergesFirst) {
  const std::vector<std::string> vocab = {"a", "b", "c", "ab", "bc"};
  auto bc_first = Build(TokenizerWith(BpeModel(vocab, {"b c", "a b"})));
  auto ab_first = Build(TokenizerWith(BpeModel(vocab, {"a b", "b c"})));
  ASSERT_TRUE(bc_first && ab_first);
  EXPECT_THAT(*bc_first->Encode("abc"), ElementsAre(0, 4));
  EXPECT_THAT(*ab_first->Encode("abc"), ElementsAre(3, 2));
}

TEST(BpeTest, EqualRanksMergeLeftmostFirst) {
  auto tokenizer = Build(TokenizerWith(BpeModel({"a", "aa"}, {"a a"})));
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(*tokenizer->Encode("aaa"), ElementsAre(1, 0));
  EXPECT_THAT(*tokenizer->Encode("aaaa"), ElementsAre(1, 1));
}

TEST(BpeTest, IgnoreMergesEmitsAWordInTheVocabularyWhole) {
  // "abc" is in the vocabulary but no merge builds it.
  TestJson model = BpeModel({"a", "b", "c", "ab", "abc"}, {"a b"});
  auto merging = Build(TokenizerWith(model));
  model["ignore_merges"] = true;
  auto ignoring = Build(TokenizerWith(model));
  ASSERT_TRUE(merging && ignoring);
  EXPECT_THAT(*merging->Encode("abc"), ElementsAre(3, 2));
  EXPECT_THAT(*ignoring->Encode("abc"), ElementsAre(4));
  EXPECT_THAT(*ignoring->Encode("abca"), ElementsAre(3, 2, 0));  // not in the vocabulary: merged
}

TEST(BpeTest, ByteFallbackThenUnknown) {
  TestJson model = BpeModel({"<unk>", "a", "<0xC3>", "<0xA9>"}, {});
  model["byte_fallback"] = true;
  model["unk_token"] = "<unk>";
  TestJson json = TokenizerWith(model);
  json["decoder"] = {{"type", "Sequence"},
                     {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}};
  auto tokenizer = Build(json);
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(*tokenizer->Encode("a\u00E9"), ElementsAre(1, 2, 3));  // é = C3 A9
  EXPECT_THAT(*tokenizer->Encode("a\u20AC"), ElementsAre(1, 0));     // € = E2 82 AC: no bytes
  EXPECT_EQ(tokenizer->Decode({1, 2, 3}), "a\u00E9");
  EXPECT_EQ(tokenizer->Decode({2, 1}), "\uFFFDa");  // a lone C3 byte
}

TEST(BpeTest, UnknownCharactersAndFuseUnk) {
  TestJson model = BpeModel({"<unk>", "a"}, {});
  model["unk_token"] = "<unk>";
  auto separate = Build(TokenizerWith(model));
  model["fuse_unk"] = true;
  auto fused = Build(TokenizerWith(model));
  ASSERT_TRUE(separate && fused);
  EXPECT_THAT(*separate->Encode("xya"), ElementsAre(0, 0, 1));
  EXPECT_THAT(*fused->Encode("xyaz"), ElementsAre(0, 1, 0));
  // Without an unk_token, HF drops what it cannot encode.
  auto dropping = Build(TokenizerWith(BpeModel({"a"}, {})));
  ASSERT_TRUE(dropping);
  EXPECT_THAT(*dropping->Encode("xa"), ElementsAre(0));
}

TEST(BpeTest, ContinuingSubwordPrefix) {
  TestJson model = BpeModel({"a", "##b", "##c", "ab"}, {"a ##b"});
  model["continuing_subword_prefix"] = "##";
  TestJson json = TokenizerWith(model);
  json["pre_tokenizer"] = {{"type", "WhitespaceSplit"}};
  auto tokenizer = Build(json);
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(*tokenizer->Encode("abc ab"), ElementsAre(3, 2, 3));
}

TEST(BpeTest, EndOfWordSuffix) {
  TestJson model = BpeModel({"a", "b", "b</w>", "ab</w>"}, {"a b</w>"});
  model["end_of_word_suffix"] = "</w>";
  TestJson json = TokenizerWith(model);
  json["pre_tokenizer"] = {{"type", "WhitespaceSplit"}};
  auto tokenizer = Build(json);
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(*tokenizer->Encode("ab ab"), ElementsAre(3, 3));
  EXPECT_THAT(*tokenizer->Encode("bab"), ElementsAre(1, 3));
}

TEST(BpeTest, RepeatedWordsComeFromTheCacheUnchanged) {
  auto tokenizer = Build(TokenizerWith(BpeModel({"a", "b", "ab"}, {"a b"})));
  ASSERT_TRUE(tokenizer);
  for (int i = 0; i < 3; ++i) EXPECT_THAT(*tokenizer->Encode("abab"), ElementsAre(2, 2));
}

TEST(BpeTest, MergeOutsideTheVocabularyIsRejected) {
  EXPECT_THAT(Tokenizer::FromJson(TokenizerWith(BpeModel({"a", "b"}, {"a b"})).dump()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tokenizer.json: model.merges[0]: token \"ab\" is not in the vocabulary"));
  EXPECT_THAT(Tokenizer::FromJson(TokenizerWith(BpeModel({"a", "b"}, {"ab"})).dump()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.merges[0]: expected \"left right\"")));
}

TEST(BpeTest, DropoutIsRefused) {
  TestJson model = BpeModel({"a"}, {});
  model["dropout"] = 0.1;
  EXPECT_THAT(Tokenizer::FromJson(TokenizerWith(model).dump()),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("model.dropout")));
}

}  // namespace
}  // namespace mmx::tokenizer
