// WakeFlag: wakes one waiting thread from any other. Wake() sets the flag; WaitUntil() returns
// once it is set (or the deadline passes) and clears it, so a wake that comes before the wait
// is not lost. A thread that waits on something else (a transport receive) waits with
// StopToken() instead, which the next Wake stops. Held by std::shared_ptr when wakers may outlive
// the waiter.
#pragma once

#include <stop_token>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mmx {

class WakeFlag {
 public:
  void Wake() {
    absl::MutexLock lock(&mu_);
    set_ = true;
    source_.request_stop();
  }
  // Returns true if woken, false at the deadline.
  bool WaitUntil(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&set_), deadline);
    const bool woken = set_;
    set_ = false;
    return woken;
  }
  // Forgets a wake that came: call before looking at everything a wake announces, so that one
  // coming after is seen by the next wait.
  void Clear() {
    absl::MutexLock lock(&mu_);
    set_ = false;
  }
  // Stopped by the next Wake, or already if a wake is pending.
  std::stop_token StopToken() {
    absl::MutexLock lock(&mu_);
    if (!set_ && source_.stop_requested()) source_ = std::stop_source();
    return source_.get_token();
  }

 private:
  absl::Mutex mu_;
  bool set_ ABSL_GUARDED_BY(mu_) = false;
  std::stop_source source_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx
