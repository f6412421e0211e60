// One admitted completion answered over HTTP: streamed as Server-Sent Events (`data: {chunk}`
// lines, the role first for chat, `data: [DONE]` last) or as one JSON object when it ends.
// A client that hangs up cancels the request (http_client_watch.h); so does the server stopping.
// An error after a stream began (a worker lost past --failover-timeout) is sent as a last
// `data: {"error": ...}` event, as vLLM does: the status line is gone by then.
#pragma once

#include "coordinator/generate_admission.h"
#include "coordinator/http_client_watch.h"
#include "coordinator/openai_responses.h"

namespace httplib {
struct Response;
}

namespace mmx::coordinator {

struct HttpCompletion {
  HttpCompletion(AdmittedRequest a, OpenAiResponder r) : admitted(std::move(a)), responder(std::move(r)) {}
  AdmittedRequest admitted;
  OpenAiResponder responder;
  bool stream = false;
  bool include_usage = false;
  bool echo = false;         // completions: the prompt goes first (responder.Echo)
  std::string prompt_text;   // what echo sends back as the prompt
  bool drop_output = false;  // max_tokens 0: the token sampled is not returned
  int client_socket = -1;    // -1: unknown
  const StopSignal* stop = nullptr;
};

// Fills `response`: for a whole answer, waits here (the handler's thread) for the request to
// end; for a stream, installs the content provider that httplib calls on this thread after the
// headers.
void RespondToCompletion(HttpCompletion completion, httplib::Response& response);

}  // namespace mmx::coordinator
