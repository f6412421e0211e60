// The OpenAI request bodies as GenerateRequests: what each field becomes, OpenAI's defaults, and
// a clear refusal (naming the field) for what is malformed or not supported.

#include "coordinator/openai_requests.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mmx::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(OpenAiRequestsTest, ChatMessagesAndSamplingBecomeTheGenerateRequest) {
  absl::StatusOr<OpenAiRequest> r = ParseChatCompletionRequest(R"({
    "model": "m", "messages": [{"role": "developer", "content": "be brief"},
                               {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
                               {"role": "assistant", "content": "hello"}],
    "max_completion_tokens": 7, "max_tokens": 99, "temperature": 0, "top_p": 0.5, "seed": 42,
    "stop": ["\n", "END"], "logprobs": true, "top_logprobs": 3, "stream": true,
    "stream_options": {"include_usage": true}, "user": "ignored", "n": 1, "presence_penalty": 0})",
                                                               4096);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->chat);
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->generate.messages_size(), 3);
  EXPECT_EQ(r->generate.messages(0).role(), "system");
  EXPECT_EQ(r->generate.messages(1).content(), "hi there");
  EXPECT_EQ(r->generate.messages(2).role(), "assistant");
  const v1::SamplingParams& s = r->generate.sampling();
  EXPECT_EQ(s.max_tokens(), 7);  // max_completion_tokens wins over the older max_tokens
  EXPECT_EQ(s.temperature(), 0.f);
  EXPECT_EQ(s.top_p(), 0.5f);
  EXPECT_EQ(s.seed(), 42u);
  EXPECT_THAT(s.stop(), ElementsAre("\n", "END"));
  EXPECT_EQ(s.logprobs(), 3);
  EXPECT_TRUE(r->logprobs);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

TEST(OpenAiRequestsTest, DefaultsAreOpenAis) {
  absl::StatusOr<OpenAiRequest> chat = ParseChatCompletionRequest(R"({"messages": [{"role": "user", "content": "x"}]})", 300);
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_EQ(chat->generate.sampling().max_tokens(), 300);  // the server's ceiling
  EXPECT_EQ(chat->generate.sampling().temperature(), 1.f);
  EXPECT_EQ(chat->generate.sampling().top_p(), 1.f);
  EXPECT_FALSE(chat->stream);
  EXPECT_FALSE(chat->logprobs);
  absl::StatusOr<OpenAiRequest> text = ParseCompletionRequest(R"({"prompt": "once", "stop": "x"})", 300);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->generate.prompt(), "once");
  EXPECT_EQ(text->generate.sampling().max_tokens(), 16);  // legacy completions' default
  EXPECT_THAT(text->generate.sampling().stop(), ElementsAre("x"));
}

TEST(OpenAiRequestsTest, CompletionPromptsAsTextOrTokenIds) {
  absl::StatusOr<OpenAiRequest> ids = ParseCompletionRequest(R"({"prompt": [5, 17, 42], "logprobs": 2})", 100);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(ids->generate.prompt_token_ids(), ElementsAre(5, 17, 42));
  EXPECT_TRUE(ids->logprobs);
  EXPECT_EQ(ids->top_logprobs, 2);
  absl::StatusOr<OpenAiRequest> one = ParseCompletionRequest(R"({"prompt": [[1, 2]]})", 100);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_THAT(one->generate.prompt_token_ids(), ElementsAre(1, 2));
  absl::StatusOr<OpenAiRequest> wrapped = ParseCompletionRequest(R"({"prompt": ["abc"], "logprobs": 0})", 100);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  EXPECT_EQ(wrapped->generate.prompt(), "abc");
  EXPECT_TRUE(wrapped->logprobs);  // logprobs 0: the chosen token's, no alternatives
}

// echo with logprobs: the prompt is scored (sampling.prompt_logprobs); max_tokens 0 generates
// one token that is not returned.
TEST(OpenAiRequestsTest, EchoScoresThePrompt) {
  absl::StatusOr<OpenAiRequest> r = ParseCompletionRequest(R"({"prompt": "a b c", "echo": true, "logprobs": 1, "max_tokens": 0})", 100);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->echo);
  EXPECT_TRUE(r->drop_output);
  EXPECT_EQ(r->generate.sampling().max_tokens(), 1);
  EXPECT_TRUE(r->generate.sampling().has_prompt_logprobs());
  EXPECT_EQ(r->generate.sampling().prompt_logprobs(), 1);
  absl::StatusOr<OpenAiRequest> plain = ParseCompletionRequest(R"({"prompt": "a", "echo": true})", 100);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->generate.sampling().has_prompt_logprobs());  // nothing to score without logprobs
  EXPECT_FALSE(plain->drop_output);
}

struct Refused {
  const char* body;
  bool chat;
  const char* param;
  const char* says;
};

TEST(OpenAiRequestsTest, RefusalsNameTheFieldAndWhatToFix) {
  const Refused cases[] = {
      {"not json", true, "", "not valid JSON"},
      {"[1]", true, "", "JSON object"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": 1E400})", true, "", "not valid JSON"},
      {R"({"messages": []})", true, "messages", "non-empty"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})", true, "messages[0].role", "system, user or assistant"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", true, "messages[0].content[0]", "text only"},
      {R"({"messages": [{"role": "user", "content": 5}]})", true, "messages[0].content", "string or a list"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 2})", true, "n", "n must be 1"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})", true, "temperature", "[0, 2]"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", true, "temperature", "number"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", true, "max_tokens", "at least 1"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5})", true, "max_tokens", "integer"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_p": 0})", true, "top_p", "above 0"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": [1]})", true, "stop", "list of strings"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", true, "top_logprobs", "logprobs: true"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21})", true, "top_logprobs", "at most 20"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}})", true, "stream_options", "stream: true"},
      {R"({"messages": [{"role": "user", "content": "x"}], "frequency_penalty": 0.5})", true, "frequency_penalty", "not supported"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": 1}})", true, "logit_bias", "not supported"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": []})", true, "tools", "not supported"},
      {R"({"messages": [{"role": "user", "content": "x"}], "model": 5})", true, "model", "string"},
      {R"({"prompt": ""})", false, "prompt", "empty"},
      {R"({"prompt": ["a", "b"]})", false, "prompt", "one prompt per request"},
      {R"({"prompt": [1, -2]})", false, "prompt", "non-negative"},
      {R"({"prompt": 7})", false, "prompt", "string or a list of token ids"},
      {R"({"prompt": "x", "max_tokens": 0})", false, "max_tokens", "at least 1"},  // 0 only with echo
      {R"({"prompt": "x", "echo": 1})", false, "echo", "true or false"},
      {R"({"prompt": "x", "suffix": "y"})", false, "suffix", "not supported"},
      {R"({"prompt": "x", "best_of": 3})", false, "best_of", "best_of must be 1"},
      {R"({"prompt": "x", "logprobs": 30})", false, "logprobs", "at most 20"},
  };
  for (const Refused& c : cases) {
    absl::StatusOr<OpenAiRequest> r = c.chat ? ParseChatCompletionRequest(c.body, 100) : ParseCompletionRequest(c.body, 100);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(r.status().message(), HasSubstr(c.says)) << c.body;
    EXPECT_EQ(OpenAiParamOf(r.status()), c.param) << c.body;
  }
}

}  // namespace
}  // namespace mmx::coordinator
