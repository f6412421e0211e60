#include "transport/mailbox.h"

#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::transport {

struct Mailbox::Waiter {
  bool any = false;
  PeerId from = 0;
  absl::CondVar cv;
  bool done = false;              // set with `status` (and `message` when OK) under mu_
  bool stop_requested = false;    // the receiver's stop token fired (under mu_)
  absl::Status status;
  std::optional<Message> message;
};

Mailbox::~Mailbox() {
  absl::MutexLock lock(&mu_);
  // A receiver still waiting would be left with a dangling mailbox: a caller bug.
  MMX_CHECK(num_waiting_ == 0);
}

void Mailbox::Finish(Waiter* waiter, absl::Status status) {
  waiter->done = true;
  waiter->status = std::move(status);
  waiter->cv.Signal();
}

void Mailbox::Connect(PeerId peer) {
  absl::MutexLock lock(&mu_);
  if (!shut_down_) peers_.insert(peer);
}

void Mailbox::Disconnect(PeerId peer) {
  absl::MutexLock lock(&mu_);
  peers_.erase(peer);
  for (auto& [key, messages] : queued_) {
    for (auto it = messages.begin(); it != messages.end();) {
      if (it->from == peer) {
        it = messages.erase(it);
        --num_queued_;
      } else {
        ++it;
      }
    }
  }
  absl::erase_if(queued_, [](const auto& entry) { return entry.second.empty(); });
  for (auto& [key, waiters] : waiters_) {
    for (auto it = waiters.begin(); it != waiters.end();) {
      Waiter* waiter = *it;
      if (!waiter->any && waiter->from == peer) {
        Finish(waiter, absl::UnavailableError(absl::StrCat(
                           "transport: peer ", peer, " disconnected while waiting for key ", key)));
        it = waiters.erase(it);
        --num_waiting_;
      } else {
        ++it;
      }
    }
  }
  absl::erase_if(waiters_, [](const auto& entry) { return entry.second.empty(); });
}

bool Mailbox::IsConnected(PeerId peer) const {
  absl::MutexLock lock(&mu_);
  return peers_.contains(peer);
}

bool Mailbox::Deliver(Message message) {
  absl::MutexLock lock(&mu_);
  if (shut_down_ || !peers_.contains(message.from)) return false;
  if (auto found = waiters_.find(message.key); found != waiters_.end()) {
    std::list<Waiter*>& waiters = found->second;
    for (auto it = waiters.begin(); it != waiters.end(); ++it) {
      Waiter* waiter = *it;
      if (waiter->any || waiter->from == message.from) {
        waiter->message = std::move(message);
        Finish(waiter, absl::OkStatus());
        waiters.erase(it);
        --num_waiting_;
        if (waiters.empty()) waiters_.erase(found);
        return true;
      }
    }
  }
  const uint64_t key = message.key;
  queued_[key].push_back(std::move(message));
  ++num_queued_;
  return true;
}

absl::StatusOr<Message> Mailbox::Receive(PeerId from, uint64_t key, absl::Duration timeout, std::stop_token stop) {
  return Wait(/*any=*/false, from, key, timeout, std::move(stop));
}

absl::StatusOr<Message> Mailbox::ReceiveAny(uint64_t key, absl::Duration timeout, std::stop_token stop) {
  return Wait(/*any=*/true, 0, key, timeout, std::move(stop));
}

absl::StatusOr<Message> Mailbox::Wait(bool any, PeerId from, uint64_t key, absl::Duration timeout,
                                      std::stop_token stop) {
  const absl::Time deadline = absl::Now() + timeout;  // InfiniteDuration gives InfiniteFuture
  Waiter waiter;
  waiter.any = any;
  waiter.from = from;
  // Registered before the lock is taken (it takes the lock, and runs at once if the stop was
  // already requested), destroyed after it is released (its destructor waits for a running
  // callback).
  std::stop_callback on_stop(stop, [this, &waiter] {
    absl::MutexLock lock(&mu_);
    waiter.stop_requested = true;
    waiter.cv.Signal();
  });
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::CancelledError("transport: shut down");
  if (waiter.stop_requested) return absl::CancelledError("transport: the wait was stopped");
  if (!any && !peers_.contains(from)) {
    return absl::UnavailableError(absl::StrCat("transport: peer ", from, " is not connected"));
  }
  if (auto found = queued_.find(key); found != queued_.end()) {
    std::deque<Message>& messages = found->second;
    for (auto it = messages.begin(); it != messages.end(); ++it) {
      if (any || it->from == from) {
        Message message = std::move(*it);
        messages.erase(it);
        --num_queued_;
        if (messages.empty()) queued_.erase(found);
        return message;
      }
    }
  }

  std::list<Waiter*>& waiters = waiters_[key];
  waiters.push_back(&waiter);
  const auto self = std::prev(waiters.end());  // list iterators survive other insertions
  ++num_waiting_;
  while (!waiter.done) {
    const bool timed_out = waiter.cv.WaitWithDeadline(&mu_, deadline);
    if (waiter.done || !(timed_out || waiter.stop_requested)) continue;
    // Timed out or stopped, and nobody finished us meanwhile: we are still linked, unlink
    // ourselves. Re-find the list: the map may have rehashed since we inserted.
    {
      auto found = waiters_.find(key);
      found->second.erase(self);
      if (found->second.empty()) waiters_.erase(found);
      --num_waiting_;
      if (waiter.stop_requested) return absl::CancelledError("transport: the wait was stopped");
      if (any) {
        return absl::DeadlineExceededError(absl::StrCat(
            "transport: no message with key ", key, " from any peer within ",
            absl::FormatDuration(timeout)));
      }
      return absl::DeadlineExceededError(absl::StrCat("transport: no message with key ", key,
                                                      " from peer ", from, " within ",
                                                      absl::FormatDuration(timeout)));
    }
  }
  if (!waiter.status.ok()) return waiter.status;
  return std::move(*waiter.message);
}

bool Mailbox::CanReceiveNow(PeerId from, uint64_t key) const { return CanReceiveNow(false, from, key); }

bool Mailbox::CanReceiveAnyNow(uint64_t key) const { return CanReceiveNow(true, 0, key); }

bool Mailbox::CanReceiveNow(bool any, PeerId from, uint64_t key) const {
  absl::MutexLock lock(&mu_);
  if (shut_down_ || (!any && !peers_.contains(from))) return true;
  auto found = queued_.find(key);
  if (found == queued_.end()) return false;
  if (any) return true;  // a queue exists only while it holds messages
  for (const Message& message : found->second) {
    if (message.from == from) return true;
  }
  return false;
}

void Mailbox::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  peers_.clear();
  queued_.clear();
  num_queued_ = 0;
  for (auto& [key, waiters] : waiters_) {
    for (Waiter* waiter : waiters) Finish(waiter, absl::CancelledError("transport: shut down"));
  }
  waiters_.clear();
  num_waiting_ = 0;
}

size_t Mailbox::num_queued() const {
  absl::MutexLock lock(&mu_);
  return num_queued_;
}

size_t Mailbox::num_waiting() const {
  absl::MutexLock lock(&mu_);
  return num_waiting_;
}

}  // namespace mmx::transport
