// WakeFlag: wakes one waiting thread from any other. Wake() sets the flag; WaitUntil() returns
// once it is set (or the deadline passes) and clears it, so a wake that comes before the wait
// is not lost. Held by std::shared_ptr when wakers may outlive the waiter.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mmx {

class WakeFlag {
 public:
  void Wake() {
    absl::MutexLock lock(&mu_);
    set_ = true;
  }
  // Returns true if woken, false at the deadline.
  bool WaitUntil(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&set_), deadline);
    const bool woken = set_;
    set_ = false;
    return woken;
  }

 private:
  absl::Mutex mu_;
  bool set_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mmx
