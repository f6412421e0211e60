// SessionWatchdog: the coordinator's side of one control session's heartbeats. It sends the
// worker a Heartbeat every interval and calls `on_silent` once nothing was heard from the worker
// for the timeout. A killed worker's connection resets at once, but a frozen process (SIGSTOP, a
// hung host) or a link that is down keeps its TCP connection open for minutes: only silence
// tells.
#pragma once

#include <functional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/cluster.h"

namespace mmx::coordinator {

class SessionWatchdog {
 public:
  // `on_silent(silence)` runs once, on the watchdog's thread, after which it stops.
  SessionWatchdog(absl::Duration interval, absl::Duration timeout, SessionWriter writer,
                  std::function<void(absl::Duration)> on_silent);
  // Stops the thread (without calling on_silent).
  ~SessionWatchdog();
  SessionWatchdog(const SessionWatchdog&) = delete;
  SessionWatchdog& operator=(const SessionWatchdog&) = delete;

  // Any message from the worker.
  void Heard();

 private:
  void Run();

  const absl::Duration interval_, timeout_;
  const SessionWriter writer_;
  const std::function<void(absl::Duration)> on_silent_;
  absl::Mutex mu_;
  absl::Time last_heard_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The heartbeat interval for a timeout: often enough that a few lost beats do not add up to a
// timeout, rarely enough to cost nothing (timeout / 5, within [50 ms, 2 s]).
absl::Duration HeartbeatInterval(absl::Duration timeout);

}  // namespace mmx::coordinator
