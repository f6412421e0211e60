// The OpenAI API's response bodies: chat.completion and text_completion objects, the chunks of
// their streamed form (the JSON of each Server-Sent Event's `data:` line), and errors in OpenAI's
// shape, `{"error": {"message", "type", "param", "code"}}`, with the HTTP status that goes with
// each absl::StatusCode.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/request.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace mmx::coordinator {

class OpenAiResponder {
 public:
  struct Setup {
    std::string id;            // "chatcmpl-..." / "cmpl-..."
    int64_t created = 0;       // unix seconds
    std::string model;
    bool chat = false;
    bool logprobs = false;     // per-token log-probabilities, in the endpoint's own layout
    bool include_usage = false;  // streamed: "usage": null on every chunk, then a usage chunk
    const tokenizer::Tokenizer* tokenizer = nullptr;  // token strings (null: "token_id:N")
  };
  explicit OpenAiResponder(Setup setup) : s_(std::move(setup)) {}

  // Streamed. Chat's first chunk: the assistant's role with empty content ("" for completions).
  std::string RoleChunk() const;
  // The text these tokens released, with their log-probabilities when asked.
  std::string DeltaChunk(const std::vector<TokenEvent>& tokens);
  // An empty delta carrying the finish reason ("stop" or "length").
  std::string FinishChunk(const std::string& finish_reason) const;
  // With include_usage, after the finish chunk: no choices, the token counts.
  std::string UsageChunk(int64_t prompt_tokens, int64_t completion_tokens) const;

  // Completions with echo: the prompt (its text, ids, and tokens 1.. scored when logprobs were
  // asked) goes before the completion, in the next DeltaChunk or in Whole.
  void Echo(std::string prompt_text, std::vector<int32_t> prompt_ids, std::vector<TokenEvent> scored);

  // Not streamed: the whole response.
  std::string Whole(const std::vector<TokenEvent>& tokens, const std::string& finish_reason,
                    int64_t prompt_tokens, int64_t completion_tokens);

 private:
  nlohmann::json Envelope(bool chunk) const;
  nlohmann::json Choice(const std::string& text, const std::vector<TokenEvent>& tokens, bool delta);
  nlohmann::json Logprobs(const std::vector<TokenEvent>& tokens);
  std::string TokenString(int32_t id) const;

  const Setup s_;
  struct Echoed {
    std::string text;
    std::vector<int32_t> ids;
    std::vector<TokenEvent> scored;  // ids[1..]
  };
  std::optional<Echoed> echo_;  // until it went out
  int64_t text_offset_ = 0;  // completions' logprobs.text_offset: characters before the next token
};

// {"prompt_tokens", "completion_tokens", "total_tokens"}
nlohmann::json OpenAiUsage(int64_t prompt_tokens, int64_t completion_tokens);

// The HTTP status of a refusal: 400 for a bad request, 401 no valid key, 403, 404, 429 a full
// queue, 503 not ready or shutting down, 504, else 500.
int HttpStatusOf(absl::StatusCode code);
// `{"error": {...}}` for `status`: its message, OpenAI's type and code for the status, and the
// field it names (openai_requests.h) as param.
std::string OpenAiErrorBody(const absl::Status& status);

}  // namespace mmx::coordinator
