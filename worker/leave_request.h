// LeaveRequest: the worker was asked to stop (SIGTERM). While it serves, the session registers
// how to leave gracefully (tell the coordinator, which lets the step in flight finish and then
// dismisses it); before or after that there is nothing to hand over, and the caller just exits.
// Thread-safe: the signal thread requests, the session thread sets the handler.
#pragma once

#include <functional>

#include "absl/synchronization/mutex.h"

namespace mmx::worker {

class LeaveRequest {
 public:
  // Records the request and runs the handler, if one is set. Returns whether one was (false:
  // nothing to leave gracefully, exit now). The handler runs under the lock, so SetHandler(nullptr)
  // waits for a run in progress: whatever the handler uses may go once that returns.
  bool Request() {
    absl::MutexLock lock(&mu_);
    requested_ = true;
    if (!handler_) return false;
    handler_();
    return true;
  }
  bool requested() const {
    absl::MutexLock lock(&mu_);
    return requested_;
  }
  // Set while serving; null to clear. A request that came before is handled at once.
  void SetHandler(std::function<void()> handler) {
    absl::MutexLock lock(&mu_);
    handler_ = std::move(handler);
    if (requested_ && handler_) handler_();
  }

 private:
  mutable absl::Mutex mu_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> handler_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::worker
