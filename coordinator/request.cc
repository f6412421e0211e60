#include "coordinator/request.h"

#include <algorithm>

namespace mmx::coordinator {

bool Request::AppendToken(TokenEvent event, bool last) {
  bool stopped = false;
  if (text_) {
    event.text = text_->Add(event.token_id, &stopped);
    if (last && !stopped) event.text += text_->Finish(&stopped);
  }
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    if (text_) text_copy_ = text_->text();
    if (first_token_time_ == absl::InfiniteFuture()) first_token_time_ = absl::Now();
    events_.push_back(std::move(event));
    listener = update_listener_;
  }
  if (listener) listener();
  return stopped;
}

std::string Request::text() const {
  absl::MutexLock lock(&mu_);
  return text_copy_;
}

void Request::AppendLogits(const float* rows, int64_t first_position, int64_t n, int64_t vocab) {
  absl::MutexLock lock(&mu_);
  const int64_t held = static_cast<int64_t>(logits_.size()) / vocab;
  const int64_t skip = std::clamp<int64_t>(held - first_position, 0, n);
  logits_.insert(logits_.end(), rows + skip * vocab, rows + n * vocab);
}

void Request::AppendPromptLogprobs(int64_t first_position, std::vector<TokenEvent> rows) {
  absl::MutexLock lock(&mu_);
  const int64_t held = static_cast<int64_t>(prompt_logprobs_.size());
  const int64_t skip = std::clamp<int64_t>(held - first_position, 0, static_cast<int64_t>(rows.size()));
  for (size_t i = static_cast<size_t>(skip); i < rows.size(); ++i) prompt_logprobs_.push_back(std::move(rows[i]));
}

std::vector<TokenEvent> Request::prompt_logprobs() const {
  absl::MutexLock lock(&mu_);
  return prompt_logprobs_;
}

std::vector<float> Request::logits() const {
  absl::MutexLock lock(&mu_);
  return logits_;
}

absl::Time Request::first_token_time() const {
  absl::MutexLock lock(&mu_);
  return first_token_time_;
}

absl::Time Request::end_time() const {
  absl::MutexLock lock(&mu_);
  return end_time_;
}

void Request::Finish(const std::string& reason) {
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    done_ = true;
    end_time_ = absl::Now();
    finish_reason_ = reason;
    listener = update_listener_;
  }
  if (listener) listener();
}

void Request::Fail(absl::Status status) {
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    done_ = true;
    end_time_ = absl::Now();
    status_ = std::move(status);
    listener = update_listener_;
  }
  if (listener) listener();
}

bool Request::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

void Request::Cancel() {
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    listener = cancel_listener_;
  }
  if (listener) listener();
}

void Request::SetUpdateListener(std::function<void()> listener) {
  absl::MutexLock lock(&mu_);
  update_listener_ = std::move(listener);
}

void Request::SetCancelListener(std::function<void()> listener) {
  absl::MutexLock lock(&mu_);
  cancel_listener_ = std::move(listener);
}

bool Request::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

absl::Status Request::final_status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

std::string Request::finish_reason() const {
  absl::MutexLock lock(&mu_);
  return finish_reason_;
}

bool Request::Next(std::vector<TokenEvent>* tokens, absl::Duration timeout) {
  tokens->clear();
  absl::MutexLock lock(&mu_);
  auto has_news = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty() || done_; };
  mu_.AwaitWithTimeout(absl::Condition(&has_news), timeout);
  while (!events_.empty()) {
    tokens->push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return !(done_ && tokens->empty());
}

}  // namespace mmx::coordinator
