// Heartbeats: the worker's side of its control session's liveness. A thread sends the
// coordinator a Heartbeat every interval for the session's life (also while the shard loads,
// when nothing else is said), and, once the worker listens to the session (serving), ends the
// session when the coordinator has been silent for the timeout: a partitioned worker then
// registers again when the link is back instead of serving a coordinator that gave it up.
#pragma once

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "worker/control_session.h"

namespace mmx::worker {

class Heartbeats {
 public:
  Heartbeats(ControlSession& session, absl::Duration interval, absl::Duration timeout, LogSink log);
  ~Heartbeats();
  Heartbeats(const Heartbeats&) = delete;
  Heartbeats& operator=(const Heartbeats&) = delete;

  // Whether the worker reads the session now (a standby waiting, a worker serving): only then
  // does a silent coordinator end it. Not while loading a shard, when nothing is read.
  void Listening(bool on = true);
  // A message from the coordinator arrived.
  void Heard();
  // Whether this side ended the session for silence.
  bool timed_out() const;

 private:
  void Run();

  ControlSession& session_;
  const absl::Duration interval_, timeout_;
  const LogSink log_;
  mutable absl::Mutex mu_;
  absl::Time last_heard_ ABSL_GUARDED_BY(mu_);
  bool listening_ ABSL_GUARDED_BY(mu_) = false;
  bool timed_out_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace mmx::worker
