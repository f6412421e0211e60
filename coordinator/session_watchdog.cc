#include "coordinator/session_watchdog.h"

#include <algorithm>

namespace mmx::coordinator {

absl::Duration HeartbeatInterval(absl::Duration timeout) {
  return std::clamp(timeout / 5, absl::Milliseconds(50), absl::Seconds(2));
}

SessionWatchdog::SessionWatchdog(absl::Duration interval, absl::Duration timeout, SessionWriter writer,
                                 std::function<void(absl::Duration)> on_silent)
    : interval_(interval), timeout_(timeout), writer_(std::move(writer)), on_silent_(std::move(on_silent)) {
  {
    absl::MutexLock lock(&mu_);
    last_heard_ = absl::Now();
  }
  thread_ = std::thread([this] { Run(); });
}

SessionWatchdog::~SessionWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void SessionWatchdog::Heard() {
  absl::MutexLock lock(&mu_);
  last_heard_ = absl::Now();
}

void SessionWatchdog::Run() {
  v1::CoordinatorMessage beat;
  beat.mutable_heartbeat();
  while (true) {
    absl::Duration silence;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_);
      if (stop_) return;
      silence = absl::Now() - last_heard_;
    }
    if (silence > timeout_) {
      on_silent_(silence);
      return;
    }
    writer_(beat);
  }
}

}  // namespace mmx::coordinator
