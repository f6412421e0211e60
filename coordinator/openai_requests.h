// The OpenAI API's request bodies (POST /v1/chat/completions and /v1/completions) turned into
// mmx's GenerateRequest, so both APIs run through one validation (RequestFactory) and one
// scheduler. What OpenAI defines and mmx does not do (n > 1, penalties, tools, logit_bias,
// suffix) is refused with a message saying so, never silently ignored; fields that do not
// change the output (user, metadata, store) are accepted and ignored. Two extensions vLLM also
// takes: top_k, and ignore_eos (generate max_tokens whatever comes, for benchmarks).
//
// Defaults are OpenAI's, not the gRPC API's: temperature 1; max_tokens the server's ceiling
// (--max-tokens) for chat and 16 for completions when the body gives none. Completions take
// `echo` (with `logprobs`, the prompt's own log-probabilities: sampling.prompt_logprobs) and
// then `max_tokens: 0`, how evaluation harnesses score a text.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "mmx/v1/inference.pb.h"

namespace mmx::coordinator {

struct OpenAiRequest {
  v1::GenerateRequest generate;
  std::string model;           // as the body named it ("" when it did not)
  bool chat = false;           // /v1/chat/completions (else /v1/completions)
  bool stream = false;         // Server-Sent Events
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage
  bool logprobs = false;       // return each token's log-probability
  int top_logprobs = 0;        // and this many alternatives per token
  bool echo = false;           // completions: the prompt comes back before the completion
  bool drop_output = false;    // max_tokens 0 (with echo): one token is generated, not returned
};

// INVALID_ARGUMENT naming the field and what to fix; the field's name is also the status's
// payload under kOpenAiParamPayload (OpenAI's error.param).
absl::StatusOr<OpenAiRequest> ParseChatCompletionRequest(std::string_view body, int default_max_tokens);
absl::StatusOr<OpenAiRequest> ParseCompletionRequest(std::string_view body, int default_max_tokens);

inline constexpr char kOpenAiParamPayload[] = "type.mmx.dev/openai-param";
// The field a status names (its kOpenAiParamPayload), "" when none.
std::string OpenAiParamOf(const absl::Status& status);

}  // namespace mmx::coordinator
