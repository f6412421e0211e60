#include "coordinator/per_key_limit.h"

#include "absl/strings/str_cat.h"

namespace mmx::coordinator {

absl::StatusOr<std::shared_ptr<void>> PerKeyLimit::Acquire(const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    int& open = open_[name];
    if (limit_ > 0 && open >= limit_) {
      return absl::ResourceExhaustedError(absl::StrCat("API key '", name, "' already has ", open,
                                                       " requests running (--max-concurrent-per-key ", limit_,
                                                       "); wait for one to end"));
    }
    ++open;
  }
  // The handle owns nothing; its deleter gives the slot back.
  return std::shared_ptr<void>(static_cast<void*>(this), [this, name](void*) { Release(name); });
}

void PerKeyLimit::Release(const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (--open_[name] <= 0) open_.erase(name);
}

int PerKeyLimit::open(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  const auto it = open_.find(name);
  return it == open_.end() ? 0 : it->second;
}

}  // namespace mmx::coordinator
