// An HTTP client's body as the OpenAI-compatible API admits it: parsed as a chat completion and
// as a completion request (openai_requests.h), every string of the result checked for UTF-8,
// validated against the test model and tokenizer, and an error rendered in OpenAI's shape (the
// message may quote the client's bytes).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coordinator/openai_requests.h"
#include "coordinator/openai_responses.h"
#include "coordinator/utf8_fields.h"
#include "tests/fuzz/request_context.h"

namespace {

void Admit(const absl::StatusOr<mmx::coordinator::OpenAiRequest>& parsed) {
  if (!parsed.ok()) {
    (void)mmx::coordinator::OpenAiErrorBody(parsed.status());
    return;
  }
  if (absl::Status utf8 = mmx::coordinator::CheckUtf8Fields(parsed->generate); !utf8.ok()) {
    (void)mmx::coordinator::OpenAiErrorBody(utf8);
    return;
  }
  absl::StatusOr<mmx::coordinator::Request::Params> params = mmx::fuzz::Factory().Validate(parsed->generate);
  if (!params.ok()) (void)mmx::coordinator::OpenAiErrorBody(params.status());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  Admit(mmx::coordinator::ParseChatCompletionRequest(body, 64));
  Admit(mmx::coordinator::ParseCompletionRequest(body, 64));
  return 0;
}
