#include "coordinator/http_completion.h"

#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

namespace mmx::coordinator {
namespace {

std::string Event(const std::string& data) { return "data: " + data + "\n\n"; }

// Once the first token is in (the prompt was scored by then), the echo goes before it; with
// max_tokens 0 the token itself is dropped. True when the echo was queued now.
bool ShapeOutput(HttpCompletion& c, bool* echoed, std::vector<TokenEvent>* tokens) {
  bool now = false;
  if (c.echo && !*echoed && !tokens->empty()) {
    const Request& request = *c.admitted.request;
    c.responder.Echo(c.prompt_text, request.params().prompt, request.prompt_logprobs());
    *echoed = now = true;
  }
  if (c.drop_output) tokens->clear();
  return now;
}

// Appends the request's new events to `tokens`; false once the request is over and everything
// was taken.
bool TakeEvents(Request& request, std::vector<TokenEvent>* tokens) {
  const bool done = request.done();  // once done, no event is added any more
  std::vector<TokenEvent> fresh;
  request.Next(&fresh, absl::ZeroDuration());
  for (TokenEvent& t : fresh) tokens->push_back(std::move(t));
  return !done;
}

void RespondWhole(HttpCompletion& c, httplib::Response& response) {
  Request& request = *c.admitted.request;
  CompletionWaiter waiter(&request, c.client_socket, c.stop);
  std::vector<TokenEvent> tokens;
  while (TakeEvents(request, &tokens)) {
    const CompletionWaiter::Event event = waiter.Wait();
    if (event != CompletionWaiter::Event::kUpdate) {
      request.Cancel();
      const absl::Status gone = event == CompletionWaiter::Event::kStop
                                    ? absl::UnavailableError("the server is shutting down; retry later")
                                    : absl::CancelledError("the client went away");
      response.status = HttpStatusOf(gone.code());
      response.set_content(OpenAiErrorBody(gone), "application/json");
      return;
    }
  }
  const absl::Status status = request.final_status();
  if (!status.ok()) {
    response.status = HttpStatusOf(status.code());
    response.set_content(OpenAiErrorBody(status), "application/json");
    return;
  }
  bool echoed = false;
  ShapeOutput(c, &echoed, &tokens);
  const auto prompt_tokens = static_cast<int64_t>(request.params().prompt.size());
  response.set_content(c.responder.Whole(tokens, request.finish_reason(), prompt_tokens,
                                         static_cast<int64_t>(tokens.size())),
                       "application/json");
}

// What a stream's content provider keeps between its calls.
struct StreamState {
  explicit StreamState(HttpCompletion c)
      : completion(std::move(c)),
        waiter(completion.admitted.request.get(), completion.client_socket, completion.stop) {}
  HttpCompletion completion;
  CompletionWaiter waiter;
  bool role_sent = false;
  bool echoed = false;
  int64_t completion_tokens = 0;
};

// One call of the content provider: writes what is ready, or waits for it. False stops the
// response (the client is gone, or the server stops); the request is then cancelled.
bool StreamSome(StreamState& s, httplib::DataSink& sink) {
  Request& request = *s.completion.admitted.request;
  OpenAiResponder& responder = s.completion.responder;
  std::string out;
  if (!s.role_sent) {
    s.role_sent = true;
    if (const std::string role = responder.RoleChunk(); !role.empty()) out += Event(role);
  }
  std::vector<TokenEvent> tokens;
  const bool more = TakeEvents(request, &tokens);
  const bool echo_now = ShapeOutput(s.completion, &s.echoed, &tokens);
  if (!tokens.empty() || echo_now) {
    s.completion_tokens += static_cast<int64_t>(tokens.size());
    out += Event(responder.DeltaChunk(tokens));
  }
  if (!more) {
    const absl::Status status = request.final_status();
    if (status.ok()) {
      out += Event(responder.FinishChunk(request.finish_reason()));
      if (s.completion.include_usage) {
        out += Event(responder.UsageChunk(static_cast<int64_t>(request.params().prompt.size()), s.completion_tokens));
      }
    } else {
      out += Event(OpenAiErrorBody(status));
    }
    out += Event("[DONE]");
  }
  if (!out.empty() && !sink.write(out.data(), out.size())) return false;
  if (!more) {
    sink.done();
    return true;
  }
  if (out.empty() && s.waiter.Wait() != CompletionWaiter::Event::kUpdate) return false;
  return true;
}

}  // namespace

void RespondToCompletion(HttpCompletion completion, httplib::Response& response) {
  if (!completion.stream) {
    RespondWhole(completion, response);
    return;
  }
  auto state = std::make_shared<StreamState>(std::move(completion));
  response.set_header("Cache-Control", "no-cache");
  response.set_chunked_content_provider(
      "text/event-stream",
      [state](size_t, httplib::DataSink& sink) {
        if (StreamSome(*state, sink)) return true;
        state->completion.admitted.request->Cancel();
        return false;
      },
      [state](bool success) {
        if (!success) state->completion.admitted.request->Cancel();  // never streamed, or cut short
      });
}

}  // namespace mmx::coordinator
