#include "worker/heartbeats.h"

#include "absl/strings/str_cat.h"

namespace mmx::worker {

Heartbeats::Heartbeats(ControlSession& session, absl::Duration interval, absl::Duration timeout, LogSink log)
    : session_(session),
      interval_(interval > absl::ZeroDuration() ? interval : absl::Seconds(1)),
      timeout_(timeout > absl::ZeroDuration() ? timeout : absl::InfiniteDuration()),
      log_(std::move(log)) {
  {
    absl::MutexLock lock(&mu_);
    last_heard_ = absl::Now();
  }
  thread_ = std::thread([this] { Run(); });
}

Heartbeats::~Heartbeats() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void Heartbeats::Listening(bool on) {
  absl::MutexLock lock(&mu_);
  listening_ = on;
  last_heard_ = absl::Now();
}

void Heartbeats::Heard() {
  absl::MutexLock lock(&mu_);
  last_heard_ = absl::Now();
}

bool Heartbeats::timed_out() const {
  absl::MutexLock lock(&mu_);
  return timed_out_;
}

void Heartbeats::Run() {
  v1::WorkerMessage beat;
  beat.mutable_heartbeat();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_);
      if (stop_) return;
      const absl::Duration silence = absl::Now() - last_heard_;
      if (listening_ && silence > timeout_) {
        timed_out_ = true;
        log_(absl::StrCat("no heartbeat from the coordinator for ", absl::FormatDuration(absl::Trunc(silence, absl::Milliseconds(100))),
                          "; ending the session to register again"));
        session_.Close();
        return;
      }
    }
    session_.Write(beat);
  }
}

}  // namespace mmx::worker
