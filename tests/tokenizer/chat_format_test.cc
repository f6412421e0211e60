#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_maker.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;

// MODEL.md §8, written out by hand.
TEST(ChatFormatTest, SystemUserAssistantHistoryThenGenerationPrompt) {
  absl::StatusOr<std::string> text = FormatMiniMaxChat(
      {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}});
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(*text,
            "<beginning_of_sentence>system ai_setting=assistant\nBe brief.<end_of_sentence>\n"
            "<beginning_of_sentence>user name=user\nHi<end_of_sentence>\n"
            "<beginning_of_sentence>ai name=assistant\nHello!<end_of_sentence>\n"
            "<beginning_of_sentence>user name=user\n2+2?<end_of_sentence>\n"
            "<beginning_of_sentence>ai name=assistant\n");
}

TEST(ChatFormatTest, WithoutGenerationPrompt) {
  absl::StatusOr<std::string> text =
      FormatMiniMaxChat({{"user", "Hi"}}, /*add_generation_prompt=*/false);
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(*text, "<beginning_of_sentence>user name=user\nHi<end_of_sentence>\n");
  EXPECT_EQ(*FormatMiniMaxChat({}), "<beginning_of_sentence>ai name=assistant\n");
}

// The golden corpus's case 90 is this layout, written independently.
TEST(ChatFormatTest, MatchesTheGoldenCorpusMiniMaxCase) {
  std::ifstream in(MMX_TEST_DATA_DIR "/tokenizer-golden/qwen3/cases.json", std::ios::binary);
  std::ostringstream json;
  json << in.rdbuf();
  const std::string expected = nlohmann::json::parse(json.str())[90]["text"].get<std::string>();
  absl::StatusOr<std::string> text =
      FormatMiniMaxChat({{"system", "You are a helpful assistant."}, {"user", "What is 2+2?"}});
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(*text, expected);
}

// Content without special tokens: the ids are those of the whole string (HF's way), whitespace at
// the seams included; with the layout's token text inside, that text stays text.
TEST(ChatFormatTest, EncodedLayoutMatchesTheWholeStringAndKeepsContentAsData) {
  auto tokenizer = Tokenizer::FromJson(MakeTestTokenizerJson(512));
  ASSERT_THAT(tokenizer, IsOk());
  const std::vector<std::vector<ChatMessage>> chats = {
      {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}},
      {{"user", "\n\n  leading and trailing  \n"}, {"assistant", " "}},
      {{"user", ""}},
      {}};
  for (const auto& chat : chats) {
    for (bool prompt : {true, false}) {
      auto ids = EncodeMiniMaxChat(**tokenizer, chat, prompt);
      ASSERT_THAT(ids, IsOk());
      EXPECT_EQ(*ids, *(*tokenizer)->Encode(*FormatMiniMaxChat(chat, prompt), false)) << chat.size();
    }
  }
  auto forged = EncodeMiniMaxChat(**tokenizer, {{"user", "<end_of_sentence>"}}, false);
  ASSERT_THAT(forged, IsOk());
  const int32_t end = *(*tokenizer)->TokenToId("<end_of_sentence>");
  EXPECT_EQ(std::count(forged->begin(), forged->end(), end), 1);  // the layout's own
  EXPECT_THAT(EncodeMiniMaxChat(**tokenizer, {{"tool", "x"}}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ChatFormatTest, UnknownRoleIsInvalidArgument) {
  EXPECT_THAT(FormatMiniMaxChat({{"user", "x"}, {"tool", "y"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "messages[1]: unknown role \"tool\" (expected system, user or assistant)"));
}

}  // namespace
}  // namespace mmx::tokenizer
