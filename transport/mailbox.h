// Mailbox: the receive side every transport shares. Messages wait here keyed by (sender, key)
// until a Receive names them, or a ReceiveAny names their key; receivers wait here for messages.
// It also holds the set of connected peers, so that "is this sender a peer?" and "fail the
// waiters of a removed peer" happen under one lock: no message from a peer can slip in after
// Disconnect(peer) returns.
//
// Matching: a message goes to the longest-waiting receiver that matches it (same key, and same
// sender unless the receiver used ReceiveAny); if none waits, it is queued. Messages with the
// same (sender, key) are received in arrival order; ReceiveAny takes the earliest-arrived
// message with its key.
//
// Not here: envelope decoding and trust checks (inbox.h), anything about the network.
//
// Thread safety: every method may be called from any thread. Waiting receivers block on their
// own condition variable; a delivery wakes only the receiver it hands the message to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <stop_token>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "transport/transport.h"

namespace mmx::transport {

class Mailbox {
 public:
  Mailbox() = default;
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  // Callers must have returned from every Receive/ReceiveAny (e.g. after Shutdown()).
  ~Mailbox();

  // Accepts messages from `peer` from now on (idempotent).
  void Connect(PeerId peer);
  // Stops accepting messages from `peer`, discards those queued from it, and wakes every
  // receiver waiting on `peer` with Unavailable. Later Receive(peer, ...) calls fail with
  // Unavailable until Connect(peer). ReceiveAny waiters are not affected.
  void Disconnect(PeerId peer);
  bool IsConnected(PeerId peer) const;

  // Hands `message` to a matching waiter or queues it. Returns false, and drops the message,
  // if message.from is not connected or after Shutdown().
  bool Deliver(Message message);

  // Waits up to `timeout` (absl::InfiniteDuration() for ever) for the message with `key` from
  // `from`. Unavailable if `from` is not connected (now or while waiting); DeadlineExceeded
  // when the timeout passes; Cancelled after Shutdown() or once `stop` is requested (which
  // wakes the waiter at once).
  absl::StatusOr<Message> Receive(PeerId from, uint64_t key, absl::Duration timeout, std::stop_token stop = {});
  // Same for the next message with `key` from any peer; never Unavailable.
  absl::StatusOr<Message> ReceiveAny(uint64_t key, absl::Duration timeout, std::stop_token stop = {});

  // Whether Receive(from, key) / ReceiveAny(key) would return now without waiting: a matching
  // message is queued, or the call would fail at once (shut down, `from` not connected). For
  // receivers that drive the network themselves while they wait (UcxTransport).
  bool CanReceiveNow(PeerId from, uint64_t key) const;
  bool CanReceiveAnyNow(uint64_t key) const;

  // Wakes every waiter with Cancelled, discards queued messages, and refuses all later calls.
  void Shutdown();

  size_t num_queued() const;   // messages waiting for a receiver
  size_t num_waiting() const;  // receivers waiting for a message

 private:
  struct Waiter;
  absl::StatusOr<Message> Wait(bool any, PeerId from, uint64_t key, absl::Duration timeout, std::stop_token stop);
  static void Finish(Waiter* waiter, absl::Status status);
  bool CanReceiveNow(bool any, PeerId from, uint64_t key) const;

  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<PeerId> peers_ ABSL_GUARDED_BY(mu_);
  // Per key, messages in arrival order.
  absl::flat_hash_map<uint64_t, std::deque<Message>> queued_ ABSL_GUARDED_BY(mu_);
  size_t num_queued_ ABSL_GUARDED_BY(mu_) = 0;
  // Per key, waiting receivers in arrival order. Each Waiter lives on its receiver's stack and
  // is unlinked (under mu_) before that receiver returns.
  absl::flat_hash_map<uint64_t, std::list<Waiter*>> waiters_ ABSL_GUARDED_BY(mu_);
  size_t num_waiting_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mmx::transport
