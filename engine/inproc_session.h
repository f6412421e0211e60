// A worker's control session carried in memory: the two ends of one Control.Session, the
// worker's (worker::ControlSession) and the coordinator's (coordinator::WorkerStream), joined by
// two queues. What gRPC does between processes, for a worker running inside the coordinator's
// process (engine/local_engine.h) and for tests of either side.
#pragma once

#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/worker_session.h"
#include "worker/control_session.h"

namespace mmx::engine {

class InprocSession {
 public:
  InprocSession();
  ~InprocSession();

  // The worker's end: Close() ends the session (the coordinator's Read returns false once the
  // queued messages are read); Finish() gives the status set by EndFromCoordinator.
  worker::ControlSession& worker_end();
  // The coordinator's end, for coordinator::ServeWorkerSession.
  coordinator::WorkerStream& coordinator_end();

  // The coordinator's handler returned `status`: the worker's Read returns false once the
  // queued messages are read, and its Finish returns `status`.
  void EndFromCoordinator(absl::Status status);

 private:
  class WorkerEnd;
  class CoordinatorEnd;

  mutable absl::Mutex mu_;
  std::deque<v1::WorkerMessage> up_ ABSL_GUARDED_BY(mu_);          // worker -> coordinator
  std::deque<v1::CoordinatorMessage> down_ ABSL_GUARDED_BY(mu_);   // coordinator -> worker
  bool worker_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool coordinator_closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status coordinator_status_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<WorkerEnd> worker_end_;
  std::unique_ptr<CoordinatorEnd> coordinator_end_;
};

}  // namespace mmx::engine
