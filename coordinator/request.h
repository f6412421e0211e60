// Request: one Generate call as the scheduler and the API handler share it. The scheduler
// appends events (tokens, then a finish or an error); the handler thread waits for them and
// writes them to the client's stream. Thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/text_stream.h"
#include "model/sampling.h"

namespace mmx::coordinator {

struct TokenEvent {
  int32_t token_id = 0;
  float logprob = 0.f;
  std::vector<int32_t> top_ids;
  std::vector<float> top_logprobs;
  std::string text;  // the text this token releases (TextStream), "" without a tokenizer
};

class Request {
 public:
  struct Params {
    std::vector<int32_t> prompt;
    model::SamplingParams sampling;
    int max_tokens = 16;
    int logprobs = 0;
    std::vector<int64_t> stop_ids;
    std::vector<std::string> stop_strings;
    // Keep the logits of every position (prompt and generated): `mmx-coord run --logits-out`.
    bool return_logits = false;
    // Score the prompt's own tokens, with this many alternatives each (-1: do not).
    int prompt_logprobs = -1;
    // Who asked: "" for a Generate call, the job id for a job's requests. The scheduler admits
    // interactive requests first, and round-robin over jobs (coordinator/waiting_room.h).
    std::string source;
    bool interactive() const { return source.empty(); }
    // State memory the request may need on each stage: prompt + max_tokens positions.
    int64_t max_positions() const { return static_cast<int64_t>(prompt.size()) + max_tokens; }
  };
  // `text` (may be null: no tokenizer, no text) turns tokens into text and finds stop strings.
  Request(uint64_t id, Params params, std::unique_ptr<TextStream> text = nullptr)
      : id_(id), params_(std::move(params)), text_(std::move(text)), created_(absl::Now()) {}

  uint64_t id() const { return id_; }
  const Params& params() const { return params_; }

  // Scheduler side. AppendToken adds a sampled token (with its text when there is a tokenizer;
  // `last`: the request ends with it, so held-back text is released too). Returns true when a
  // stop string completed: the request must end with finish_reason "stop".
  bool AppendToken(TokenEvent event, bool last);
  // Logits rows [n, V] of positions [first_position, first_position + n), in order
  // (return_logits only). Rows of positions already held (a replay after failover) are skipped.
  void AppendLogits(const float* rows, int64_t first_position, int64_t n, int64_t vocab);
  // Scored prompt rows (prompt_logprobs only): rows[i] is the prompt token at position
  // first_position + i + 1 with its log-probability there. Rows already held are skipped.
  void AppendPromptLogprobs(int64_t first_position, std::vector<TokenEvent> rows);
  void Finish(const std::string& reason);
  void Fail(absl::Status status);
  bool cancelled() const;

  // Consumer side: waits (up to `timeout`; zero: not at all) for new events. Returns false once
  // everything was taken and the request is over (then `final_status` / `finish_reason` say how).
  bool Next(std::vector<TokenEvent>* tokens, absl::Duration timeout);
  // Cancels the request; the listener (if any) is called after, outside the request's lock.
  void Cancel();
  // Called by Cancel(): how the scheduler learns of it at once (it may wait for nothing else).
  void SetCancelListener(std::function<void()> listener);
  // Called after every token appended and when the request ends (finished, failed): how its
  // consumer (a client's stream, the job runner) learns of it without polling. Called outside
  // the request's lock, on the scheduler's thread; must not block.
  void SetUpdateListener(std::function<void()> listener);
  bool done() const;
  absl::Status final_status() const;
  std::string finish_reason() const;

  // With return_logits: [positions processed, V], row i the logits after position i.
  std::vector<float> logits() const;
  // With prompt_logprobs: the prompt's tokens 1..P-1 scored, as far as the prefill has gone
  // (all of them once the first token was sampled).
  std::vector<TokenEvent> prompt_logprobs() const;
  // When the first token was sampled (the end of the prompt's prefill) and when the request
  // ended; InfiniteFuture until then.
  absl::Time first_token_time() const;
  absl::Time end_time() const;

  // The text released so far (all of it once done), "" without a tokenizer.
  std::string text() const;
  bool has_text() const { return text_ != nullptr; }
  absl::Time created() const { return created_; }

  // Scheduler bookkeeping (scheduler thread only). The context is the prompt followed by
  // `output`; `processed` of its positions have state on the stages (0 again after a failover,
  // until the replay has fed them again).
  int64_t processed = 0;
  std::vector<int32_t> output;
  bool sent_first_step = false;
  // Set when the request's state was lost with a worker; cleared by its next token.
  absl::Time paused_at = absl::InfiniteFuture();
  // Context positions below this are being replayed (the context when the state was lost).
  int64_t replay_until = 0;
  absl::Time last_token_at = absl::InfinitePast();  // time per output token
  // The wave it runs in (scheduler.h), and whether that wave's step with it is out now: until
  // its tokens are back it is neither freed nor preempted nor planned again.
  int wave = 0;
  bool in_flight = false;
  // Its attention group (plan/shard_config.h), where the state budget placed it.
  std::string group;
  // The stages no longer hold this sequence's state (a lost worker, or a preemption): its next
  // steps replay the context it had, from position 0.
  void ForgetState() {
    replay_until = std::max(replay_until, processed);
    processed = 0;
    sent_first_step = false;
  }
  int32_t context_token(int64_t position) const {
    const int64_t prompt = static_cast<int64_t>(params_.prompt.size());
    return position < prompt ? params_.prompt[position] : output[position - prompt];
  }

 private:
  const uint64_t id_;
  const Params params_;
  const std::unique_ptr<TextStream> text_;  // used by the scheduler thread only
  const absl::Time created_;
  mutable absl::Mutex mu_;
  std::string text_copy_ ABSL_GUARDED_BY(mu_);
  std::deque<TokenEvent> events_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> cancel_listener_ ABSL_GUARDED_BY(mu_);
  std::function<void()> update_listener_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::string finish_reason_ ABSL_GUARDED_BY(mu_);
  std::vector<float> logits_ ABSL_GUARDED_BY(mu_);
  std::vector<TokenEvent> prompt_logprobs_ ABSL_GUARDED_BY(mu_);
  absl::Time first_token_time_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Time end_time_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace mmx::coordinator
