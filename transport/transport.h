// Transport: the data plane between mmx processes (coordinator and workers). Messages are a
// small opaque header plus one contiguous payload (tensor rows), delivered to the receiver's
// mailbox and matched there by a 64-bit key the sender chose, never by arrival order.
//
// Implementations: UcxTransport (transport/ucx_transport.h: UCX active messages over RDMA, shared
// memory or TCP) and InprocTransport (transport/inproc_transport.h: queues in one process, for
// unit tests and local runs).
//
// Trust: every message carries the sender's peer id and the cluster token the coordinator handed
// out. A message whose envelope is malformed, whose sender is not in the peer table, or whose
// token differs is dropped and counted (dropped_messages()), never delivered.
//
// Thread safety: all methods may be called from any thread. Receiving threads block on a
// condition variable (they do not spin): a worker waiting for data leaves the CPU to others.
#pragma once

#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transport/cluster_token.h"
#include "transport/payload.h"

namespace mmx::transport {

using PeerId = uint32_t;

struct Message {
  PeerId from = 0;
  uint64_t key = 0;
  std::string header;            // the sender's header bytes, as sent
  Payload payload;               // the sender's payload bytes, as sent
};

struct TransportOptions {
  PeerId self = 0;              // this process's id in the peer table
  ClusterToken cluster_token;   // shared secret of the cluster, from the coordinator
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Opaque bytes a peer passes to Connect() to reach this process (for UCX: the worker address).
  virtual std::string LocalAddress() const = 0;

  // Adds (or replaces) a peer: messages to it go to `address`, messages from it are accepted.
  // Unavailable if the address cannot be reached.
  virtual absl::Status Connect(PeerId peer, const std::string& address) = 0;
  // Removes a peer: pending and future receives that name it fail with Unavailable.
  virtual void Disconnect(PeerId peer) = 0;

  // How long a thread that waits on this transport (a receive, a send's completion) may drive
  // the network itself before it sleeps (UcxTransport: both progress budgets); any thread, any
  // time. Transports without a network to drive ignore it.
  virtual void SetBusyPoll(absl::Duration budget) {}

  // Sends header + payload to `peer`, to be matched there under `key`. Returns once the payload
  // may be reused. Unavailable if the peer is unknown or unreachable.
  virtual absl::Status Send(PeerId peer, uint64_t key, const std::string& header,
                            const void* payload, size_t payload_bytes) = 0;

  // Several sends at once, e.g. one MoE layer's dispatch to every expert host: all are posted
  // before any is waited for, so each receiver starts on its part without waiting for the
  // others' transfers (a rendezvous send completes only when its receiver has taken the data).
  // Returns once every payload may be reused: OK, or the first error in `messages` order (the
  // other messages were still sent).
  struct Outgoing {
    PeerId peer = 0;
    uint64_t key = 0;
    std::string header;
    const void* payload = nullptr;
    size_t payload_bytes = 0;
  };
  virtual absl::Status SendAll(const std::vector<Outgoing>& messages) {
    absl::Status first;
    for (const Outgoing& m : messages) first.Update(Send(m.peer, m.key, m.header, m.payload, m.payload_bytes));
    return first;
  }

  // Waits for the message with `key` from `peer`. DeadlineExceeded after `timeout`, Unavailable
  // if the peer is disconnected (now or while waiting), Cancelled after Shutdown() or as soon as
  // `stop` is requested (the waiter wakes at once: a voided step, a lost worker).
  virtual absl::StatusOr<Message> Receive(PeerId peer, uint64_t key, absl::Duration timeout,
                                          std::stop_token stop) = 0;
  // Waits for the next message with `key` from any peer (e.g. step batches at a stage).
  virtual absl::StatusOr<Message> ReceiveAny(uint64_t key, absl::Duration timeout, std::stop_token stop) = 0;

  // The same, with nothing to stop the wait but its timeout and Shutdown().
  absl::StatusOr<Message> Receive(PeerId peer, uint64_t key, absl::Duration timeout) {
    return Receive(peer, key, timeout, std::stop_token());
  }
  absl::StatusOr<Message> ReceiveAny(uint64_t key, absl::Duration timeout) {
    return ReceiveAny(key, timeout, std::stop_token());
  }

  // Wakes every waiter with Cancelled and stops accepting messages.
  virtual void Shutdown() = 0;

  // Messages dropped because their envelope failed validation (bad size, unknown sender, token).
  virtual uint64_t dropped_messages() const = 0;
};

}  // namespace mmx::transport
