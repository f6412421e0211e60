#include "engine/inproc_session.h"

namespace mmx::engine {

class InprocSession::WorkerEnd final : public worker::ControlSession {
 public:
  explicit WorkerEnd(InprocSession* s) : s_(s) {}
  bool Write(const v1::WorkerMessage& message) override {
    absl::MutexLock lock(&s_->mu_);
    if (s_->worker_closed_ || s_->coordinator_closed_) return false;
    s_->up_.push_back(message);
    return true;
  }
  bool Read(v1::CoordinatorMessage* message) override {
    absl::MutexLock lock(&s_->mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s_->mu_) {
      return !s_->down_.empty() || s_->coordinator_closed_ || s_->worker_closed_;
    };
    s_->mu_.Await(absl::Condition(&ready));
    if (s_->worker_closed_ || s_->down_.empty()) return false;
    *message = std::move(s_->down_.front());
    s_->down_.pop_front();
    return true;
  }
  void Close() override {
    absl::MutexLock lock(&s_->mu_);
    s_->worker_closed_ = true;
  }
  absl::Status Finish() override {
    absl::MutexLock lock(&s_->mu_);
    return s_->coordinator_status_;
  }

 private:
  InprocSession* s_;
};

class InprocSession::CoordinatorEnd final : public coordinator::WorkerStream {
 public:
  explicit CoordinatorEnd(InprocSession* s) : s_(s) {}
  bool Read(v1::WorkerMessage* message) override {
    absl::MutexLock lock(&s_->mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s_->mu_) {
      return !s_->up_.empty() || s_->worker_closed_ || s_->coordinator_closed_;
    };
    s_->mu_.Await(absl::Condition(&ready));
    if (s_->coordinator_closed_ || s_->up_.empty()) return false;
    *message = std::move(s_->up_.front());
    s_->up_.pop_front();
    return true;
  }
  bool Write(const v1::CoordinatorMessage& message) override {
    absl::MutexLock lock(&s_->mu_);
    if (s_->worker_closed_ || s_->coordinator_closed_) return false;
    s_->down_.push_back(message);
    return true;
  }
  void Cancel() override {
    absl::MutexLock lock(&s_->mu_);
    s_->coordinator_closed_ = true;
  }

 private:
  InprocSession* s_;
};

InprocSession::InprocSession()
    : worker_end_(std::make_unique<WorkerEnd>(this)), coordinator_end_(std::make_unique<CoordinatorEnd>(this)) {}

InprocSession::~InprocSession() = default;

worker::ControlSession& InprocSession::worker_end() { return *worker_end_; }
coordinator::WorkerStream& InprocSession::coordinator_end() { return *coordinator_end_; }

void InprocSession::EndFromCoordinator(absl::Status status) {
  absl::MutexLock lock(&mu_);
  coordinator_closed_ = true;
  coordinator_status_ = std::move(status);
}

}  // namespace mmx::engine
