// The test tokenizers of random-weight models: valid, deterministic, inside the model's id
// space, round-tripping any text; and mmx-mkmodel writes one next to the weights.
#include "model/tokenizer/tokenizer_maker.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "tests/testing/status_matchers.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;

const std::vector<std::string> kTexts = {
    "The quick brown fox jumps over the lazy dog.",
    "def f(x):\n    return x * 2\n",
    "  leading spaces, trailing tabs\t\t\n\n",
    "Gr\u00FC\u00DFe, \u4E16\u754C! \U0001F600 caf\u00E9 \u0645\u0631\u062D\u0628\u0627",
    std::string("nul \0 and \x7F bytes", 18),
    "12345 + 67890 = 80235",
    "",
};

std::unique_ptr<Tokenizer> Make(int64_t model_vocab_size) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromJson(MakeTestTokenizerJson(model_vocab_size));
  EXPECT_THAT(tokenizer, IsOk());
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

void ExpectRoundTripsInsideTheModel(const Tokenizer& tokenizer, int64_t model_vocab_size) {
  for (const std::string& text : kTexts) {
    const std::vector<int32_t> ids = *tokenizer.Encode(text);
    for (int32_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, model_vocab_size);
      EXPECT_TRUE(tokenizer.IsDefined(id)) << id;
    }
    EXPECT_EQ(tokenizer.Decode(ids), text);
  }
}

TEST(TokenizerMakerTest, TinyVocabularyFitsAndRoundTrips) {
  auto tokenizer = Make(512);
  ASSERT_TRUE(tokenizer);
  EXPECT_EQ(tokenizer->vocab_size(), 512);
  EXPECT_EQ(tokenizer->TokenToId("<beginning_of_sentence>"), 510);
  EXPECT_EQ(tokenizer->TokenToId("<end_of_sentence>"), 511);
  EXPECT_TRUE(tokenizer->IsSpecial(510));
  EXPECT_TRUE(tokenizer->IsSpecial(511));
  for (int32_t id = 0; id < 512; ++id) EXPECT_TRUE(tokenizer->IsDefined(id)) << id;  // all used
  // The byte tokens come first, in byte order.
  EXPECT_EQ(tokenizer->Decode({'A', 'b', '\n'}), "Ab\n");
  ExpectRoundTripsInsideTheModel(*tokenizer, 512);
}

TEST(TokenizerMakerTest, CommonWordsAreSingleTokens) {
  auto tokenizer = Make(512);
  ASSERT_TRUE(tokenizer);
  for (const char* word : {" the", " and", "The", " token"}) {
    EXPECT_EQ(tokenizer->Encode(word)->size(), 1u) << '"' << word << '"';
  }
  EXPECT_LT(tokenizer->Encode(kTexts[0])->size(), kTexts[0].size() / 2);
}

TEST(TokenizerMakerTest, LargerVocabularyLeavesAGapBelowTheSpecialTokens) {
  auto tokenizer = Make(32000);
  ASSERT_TRUE(tokenizer);
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
  EXPECT_EQ(tokenizer->TokenToId("<beginning_of_sentence>"), 31998);
  EXPECT_EQ(tokenizer->TokenToId("<end_of_sentence>"), 31999);
  EXPECT_FALSE(tokenizer->IsDefined(31997));  // the short corpus learns far fewer merges
  ExpectRoundTripsInsideTheModel(*tokenizer, 32000);
}

TEST(TokenizerMakerTest, RealSizedModelHasEosAt200020) {
  auto tokenizer = Make(200064);
  ASSERT_TRUE(tokenizer);
  EXPECT_EQ(tokenizer->TokenToId("<end_of_sentence>"), 200020);
  EXPECT_EQ(tokenizer->TokenToId("<beginning_of_sentence>"), 200019);
  EXPECT_EQ(tokenizer->vocab_size(), 200021);
  ExpectRoundTripsInsideTheModel(*tokenizer, 200064);
}

TEST(TokenizerMakerTest, SmallestVocabularyHasOnlyBytesAndSpecialTokens) {
  auto tokenizer = Make(kMinTestTokenizerVocabSize);
  ASSERT_TRUE(tokenizer);
  EXPECT_EQ(tokenizer->TokenToId("<end_of_sentence>"), 257);
  ExpectRoundTripsInsideTheModel(*tokenizer, kMinTestTokenizerVocabSize);
}

TEST(TokenizerMakerTest, SameSizeSameBytes) {
  EXPECT_EQ(MakeTestTokenizerJson(512), MakeTestTokenizerJson(512));
  EXPECT_NE(MakeTestTokenizerJson(512), MakeTestTokenizerJson(513));
}

TEST(TokenizerMakerTest, ChatTurnsEncodeTheirMarkersAsSpecialIds) {
  auto tokenizer = Make(512);
  ASSERT_TRUE(tokenizer);
  absl::StatusOr<std::string> chat = FormatMiniMaxChat({{"system", "Be brief."}, {"user", "Hi"}});
  ASSERT_THAT(chat, IsOk());
  const std::vector<int32_t> ids = *tokenizer->Encode(*chat);
  EXPECT_EQ(ids.front(), 510);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 510), 3);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 511), 2);
  EXPECT_EQ(tokenizer->Decode(ids), *chat);
}

TEST(TokenizerMakerTest, MkmodelWritesATokenizerForTheModelVocabulary) {
  const std::string dir = ::testing::TempDir() + "/mkmodel_tokenizer_" + std::to_string(getpid());
  const std::string cmd = std::string(MMX_BINARY_DIR) + "/bin/mmx-mkmodel --preset tiny --out " +
                          dir + " --threads 2 2>/dev/null";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir + "/tokenizer.json");
  ASSERT_THAT(tokenizer, IsOk());
  EXPECT_EQ((*tokenizer)->vocab_size(), 512);  // the tiny preset's vocab_size
  ExpectRoundTripsInsideTheModel(**tokenizer, 512);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mmx::tokenizer
