// The OpenAI response bodies: the objects and chunks OpenAI's clients parse, logprobs in each
// endpoint's layout, usage, and errors with their HTTP status.

#include "coordinator/openai_responses.h"

#include "absl/strings/cord.h"
#include "coordinator/openai_requests.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer_maker.h"

namespace mmx::coordinator {
namespace {

using Json = nlohmann::json;

TokenEvent Token(int32_t id, float logprob, const std::string& text, std::vector<int32_t> top_ids = {},
                 std::vector<float> top_logprobs = {}) {
  TokenEvent t;
  t.token_id = id;
  t.logprob = logprob;
  t.text = text;
  t.top_ids = std::move(top_ids);
  t.top_logprobs = std::move(top_logprobs);
  return t;
}

OpenAiResponder::Setup Chat(bool logprobs = false, bool usage = false) {
  OpenAiResponder::Setup s;
  s.id = "chatcmpl-1";
  s.created = 1700000000;
  s.model = "tiny";
  s.chat = true;
  s.logprobs = logprobs;
  s.include_usage = usage;
  return s;
}

TEST(OpenAiResponsesTest, WholeChatCompletion) {
  OpenAiResponder r(Chat());
  const Json j = Json::parse(r.Whole({Token(5, -0.5f, "Hel"), Token(6, -1.f, "lo")}, "length", 9, 2));
  EXPECT_EQ(j["id"], "chatcmpl-1");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["message"], Json({{"role", "assistant"}, {"content", "Hello"}}));
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"], Json({{"prompt_tokens", 9}, {"completion_tokens", 2}, {"total_tokens", 11}}));
}

TEST(OpenAiResponsesTest, StreamedChatChunks) {
  OpenAiResponder r(Chat(false, /*usage=*/true));
  const Json role = Json::parse(r.RoleChunk());
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["delta"], Json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(role.contains("usage") && role["usage"].is_null());
  const Json delta = Json::parse(r.DeltaChunk({Token(5, -0.5f, "a"), Token(6, -0.5f, "b")}));
  EXPECT_EQ(delta["choices"][0]["delta"], Json({{"content", "ab"}}));
  EXPECT_TRUE(delta["choices"][0]["finish_reason"].is_null());
  const Json finish = Json::parse(r.FinishChunk("stop"));
  EXPECT_EQ(finish["choices"][0]["delta"], Json::object());
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "stop");
  const Json usage = Json::parse(r.UsageChunk(4, 2));
  EXPECT_EQ(usage["choices"], Json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 6);
}

TEST(OpenAiResponsesTest, ChatLogprobsNameTokensWithTheirAlternatives) {
  const auto tok = tokenizer::Tokenizer::FromJson(tokenizer::MakeTestTokenizerJson(512)).value();
  OpenAiResponder::Setup s = Chat(/*logprobs=*/true);
  s.tokenizer = tok.get();
  OpenAiResponder r(s);
  const int32_t a = *tok->TokenToId("a"), b = *tok->TokenToId("b");
  const Json j = Json::parse(r.DeltaChunk({Token(a, -0.25f, "a", {a, b}, {-0.25f, -2.f})}));
  const Json& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 1u);
  EXPECT_EQ(content[0]["token"], "a");
  EXPECT_EQ(content[0]["logprob"], -0.25);
  EXPECT_EQ(content[0]["bytes"], Json::array({'a'}));
  ASSERT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"][1]["token"], "b");
  EXPECT_EQ(content[0]["top_logprobs"][1]["logprob"], -2.0);
}

TEST(OpenAiResponsesTest, CompletionLogprobsWithTextOffsets) {
  OpenAiResponder::Setup s = Chat(/*logprobs=*/true);
  s.chat = false;
  s.id = "cmpl-1";
  OpenAiResponder r(s);  // no tokenizer: tokens are named by id
  EXPECT_EQ(r.RoleChunk(), "");
  const Json first = Json::parse(r.DeltaChunk({Token(7, -1.f, "", {7, 8}, {-1.f, -1.5f})}));
  EXPECT_EQ(first["object"], "text_completion");
  EXPECT_EQ(first["choices"][0]["text"], "");
  const Json& lp = first["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], Json::array({"token_id:7"}));
  EXPECT_EQ(lp["token_logprobs"], Json::array({-1.0}));
  EXPECT_EQ(lp["top_logprobs"][0], Json({{"token_id:7", -1.0}, {"token_id:8", -1.5}}));
  EXPECT_EQ(lp["text_offset"], Json::array({0}));
  const Json second = Json::parse(r.DeltaChunk({Token(9, -1.f, "")}));
  EXPECT_EQ(second["choices"][0]["logprobs"]["text_offset"], Json::array({10}));  // after "token_id:7"
}

// echo: the prompt's text and tokens go first, its first token without a log-probability.
TEST(OpenAiResponsesTest, EchoedPromptComesBeforeTheCompletion) {
  OpenAiResponder::Setup s = Chat(/*logprobs=*/true);
  s.chat = false;
  OpenAiResponder r(s);
  r.Echo("ab", {1, 2}, {Token(2, -0.5f, "", {2, 3}, {-0.5f, -1.f})});
  const Json j = Json::parse(r.Whole({Token(4, -2.f, "c")}, "length", 2, 1));
  EXPECT_EQ(j["choices"][0]["text"], "abc");
  const Json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], Json::array({"token_id:1", "token_id:2", "token_id:4"}));
  EXPECT_EQ(lp["token_logprobs"], Json::array({nullptr, -0.5, -2.0}));
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_EQ(lp["top_logprobs"][1], Json({{"token_id:2", -0.5}, {"token_id:3", -1.0}}));
  EXPECT_EQ(lp["text_offset"], Json::array({0, 10, 20}));
  EXPECT_EQ(j["usage"]["completion_tokens"], 1);
  // Sent once: a later chunk carries only its own tokens.
  const Json next = Json::parse(r.DeltaChunk({Token(5, -1.f, "d")}));
  EXPECT_EQ(next["choices"][0]["text"], "d");
}

TEST(OpenAiResponsesTest, ErrorsInOpenAisShapeWithTheirStatus) {
  absl::Status bad = absl::InvalidArgumentError("temperature must be a number");
  bad.SetPayload(kOpenAiParamPayload, absl::Cord("temperature"));
  Json j = Json::parse(OpenAiErrorBody(bad));
  EXPECT_EQ(j["error"]["message"], "temperature must be a number");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "temperature");
  EXPECT_TRUE(j["error"]["code"].is_null());
  EXPECT_EQ(HttpStatusOf(bad.code()), 400);

  j = Json::parse(OpenAiErrorBody(absl::UnauthenticatedError("no key")));
  EXPECT_EQ(j["error"]["code"], "invalid_api_key");
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnauthenticated), 401);
  j = Json::parse(OpenAiErrorBody(absl::ResourceExhaustedError("queue full")));
  EXPECT_EQ(j["error"]["type"], "rate_limit_error");
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kResourceExhausted), 429);
  j = Json::parse(OpenAiErrorBody(absl::UnavailableError("not ready")));
  EXPECT_EQ(j["error"]["type"], "server_error");
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInternal), 500);
  // A message that quotes a client's bytes cut mid-character is still JSON.
  j = Json::parse(OpenAiErrorBody(absl::InvalidArgumentError(std::string("bad \xE2\x82", 6))));
  EXPECT_THAT(j["error"]["message"].get<std::string>(), ::testing::StartsWith("bad "));
}

}  // namespace
}  // namespace mmx::coordinator
