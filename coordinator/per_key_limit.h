// PerKeyLimit (`mmx-coord serve --max-concurrent-per-key N`): how many Generate calls one API
// key may have open at once, so that one client cannot take every running slot from the others.
// A call over the limit is refused RESOURCE_EXHAUSTED at once (the client retries or waits for
// its own calls). Batch jobs are not counted: they already share the batch through
// --max-job-share. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace mmx::coordinator {

class PerKeyLimit {
 public:
  explicit PerKeyLimit(int limit) : limit_(limit) {}

  // One of `name`'s slots, held until the returned handle is destroyed; RESOURCE_EXHAUSTED when
  // `name` holds them all. A limit of 0 (or less) never refuses.
  absl::StatusOr<std::shared_ptr<void>> Acquire(const std::string& name);
  int open(const std::string& name) const;

 private:
  void Release(const std::string& name);

  const int limit_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::coordinator
