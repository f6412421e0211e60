// Request: one Generate call as the scheduler and the API handler share it. The scheduler
// appends events (tokens, then a finish or an error); the handler thread waits for them and
// writes them to the client's stream. Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/sampling.h"

namespace mmx::coordinator {

struct TokenEvent {
  int32_t token_id = 0;
  float logprob = 0.f;
  std::vector<int32_t> top_ids;
  std::vector<float> top_logprobs;
};

class Request {
 public:
  struct Params {
    std::vector<int32_t> prompt;
    model::SamplingParams sampling;
    int max_tokens = 16;
    int logprobs = 0;
    std::vector<int64_t> stop_ids;
  };
  Request(uint64_t id, Params params) : id_(id), params_(std::move(params)) {}

  uint64_t id() const { return id_; }
  const Params& params() const { return params_; }

  // Scheduler side.
  void AddToken(TokenEvent event);
  void Finish(const std::string& reason);
  void Fail(absl::Status status);
  bool cancelled() const;

  // Handler side: waits for new events. Returns false once everything was taken and the
  // request is over (then `final_status` / `finish_reason` say how).
  bool Next(std::vector<TokenEvent>* tokens, absl::Duration timeout);
  void Cancel();
  bool done() const;
  absl::Status final_status() const;
  std::string finish_reason() const;

  // Scheduler bookkeeping (scheduler thread only).
  int64_t prompt_done = 0;
  std::vector<int32_t> output;
  bool sent_first_step = false;

 private:
  const uint64_t id_;
  const Params params_;
  mutable absl::Mutex mu_;
  std::deque<TokenEvent> events_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::string finish_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::coordinator
