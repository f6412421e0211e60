#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
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

TEST(ChatFormatTest, UnknownRoleIsInvalidArgument) {
  EXPECT_THAT(FormatMiniMaxChat({{"user", "x"}, {"tool", "y"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "messages[1]: unknown role \"tool\" (expected system, user or assistant)"));
}

}  // namespace
}  // namespace mmx::tokenizer
