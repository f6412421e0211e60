#include "coordinator/generate_stream.h"

#include <vector>

#include "proto/grpc_status.h"

namespace mmx::coordinator {

GenerateStream* GenerateStream::Start(std::shared_ptr<Request> request, Metrics* metrics,
                                      std::shared_ptr<void> hold) {
  std::shared_ptr<GenerateStream> stream(new GenerateStream(request, metrics));
  stream->hold_ = std::move(hold);
  stream->self_ = stream;
  std::weak_ptr<GenerateStream> weak = stream;
  request->SetUpdateListener([weak] {
    if (std::shared_ptr<GenerateStream> s = weak.lock()) s->Pump();
  });
  stream->Pump();  // what arrived before the listener was set
  return stream.get();
}

void GenerateStream::Pump() {
  enum class Action { kNone, kWrite, kFinish } action = Action::kNone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || finished_) return;
    // Once done, no event is added any more: what Next returns after is everything.
    const bool done = request_->done();
    std::vector<TokenEvent> tokens;
    request_->Next(&tokens, absl::ZeroDuration());
    const absl::Status final_status = done ? request_->final_status() : absl::OkStatus();
    if (tokens.empty() && !done) return;
    response_.Clear();
    std::string text;
    const bool want_logprobs = request_->params().logprobs > 0;
    for (const TokenEvent& t : tokens) {
      response_.add_token_ids(t.token_id);
      response_.add_logprobs(t.logprob);
      text += t.text;
      if (want_logprobs) {
        v1::TopLogprobs* top = response_.add_top_logprobs();
        top->mutable_token_ids()->Add(t.top_ids.begin(), t.top_ids.end());
        top->mutable_logprobs()->Add(t.top_logprobs.begin(), t.top_logprobs.end());
      }
    }
    if (!prompt_sent_ && !tokens.empty() && request_->params().prompt_logprobs >= 0) {
      // Every prompt row was scored before the first token was sampled (step_results.cc).
      prompt_sent_ = true;
      const auto& prompt = request_->params().prompt;
      response_.mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
      for (const TokenEvent& t : request_->prompt_logprobs()) {
        response_.add_prompt_logprobs(t.logprob);
        v1::TopLogprobs* top = response_.add_prompt_top_logprobs();
        top->mutable_token_ids()->Add(t.top_ids.begin(), t.top_ids.end());
        top->mutable_logprobs()->Add(t.top_logprobs.begin(), t.top_logprobs.end());
      }
    }
    completion_tokens_ += static_cast<int64_t>(tokens.size());
    response_.set_text(std::move(text));
    if (done && final_status.ok()) {
      response_.set_finish_reason(request_->finish_reason());
      response_.mutable_usage()->set_prompt_tokens(static_cast<int32_t>(request_->params().prompt.size()));
      response_.mutable_usage()->set_completion_tokens(static_cast<int32_t>(completion_tokens_));
    }
    if (done) {
      final_status_ = ToGrpcStatus(final_status);
      finish_after_write_ = true;
    }
    // The tokens before an error still go out; an error with nothing new ends the call at once.
    if (!tokens.empty() || (done && final_status.ok())) {
      writing_ = true;
      action = Action::kWrite;
    } else {
      finished_ = true;
      action = Action::kFinish;
    }
  }
  if (action == Action::kWrite) StartWrite(&response_);
  if (action == Action::kFinish) Finish(final_status_);
}

void GenerateStream::OnWriteDone(bool ok) {
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok && !finished_) {
      // The client went away: stop generating for it.
      request_->Cancel();
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      finished_ = finish = true;
    } else if (finish_after_write_ && !finished_) {
      finished_ = finish = true;
    }
  }
  if (finish) {
    Finish(final_status_);
    return;
  }
  Pump();
}

void GenerateStream::OnCancel() {
  request_->Cancel();  // the scheduler frees the sequence at its next iteration
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writing_ && !finished_) {
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
      finished_ = finish = true;
    }
  }
  if (finish) Finish(final_status_);
}

void GenerateStream::OnDone() {
  request_->SetUpdateListener(nullptr);
  self_.reset();  // may destroy this: nothing after it
}

}  // namespace mmx::coordinator
