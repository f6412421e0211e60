// InprocTransport: Transport between objects in one process, for unit tests and single-process
// runs. Transports attach to a shared InprocFabric under a name; that name is their address.
// Messages take the same path as over UCX (encode the envelope on send, decode and check it on
// receive: inbox.h), so tests of the trust rules hold for both implementations.
//
// Not a model of the network's timing: Send() copies the message into the receiver's mailbox
// before it returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "transport/inbox.h"
#include "transport/transport.h"

namespace mmx::transport {

class InprocTransport;

// The shared medium: a directory of attached transports by name. Create one per test (or
// process) and hand it to every InprocTransport::Create. Thread-safe.
class InprocFabric {
 public:
  InprocFabric() = default;
  InprocFabric(const InprocFabric&) = delete;
  InprocFabric& operator=(const InprocFabric&) = delete;

  // Hands raw bytes to the transport attached as `address`, exactly as if they had arrived from
  // the network: `frame` is the envelope plus header. For tests that forge or corrupt messages.
  // Unavailable if nothing is attached under `address`.
  absl::Status DeliverRaw(const std::string& address, absl::string_view frame,
                          const void* payload, size_t payload_bytes);

  bool HasAddress(const std::string& address) const;

 private:
  friend class InprocTransport;
  absl::Status Attach(const std::string& address, InprocTransport* transport);
  void Detach(const std::string& address);

  // Delivery holds a reader lock, so Detach (a writer) waits until no delivery can still reach
  // the detaching transport.
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, InprocTransport*> attached_ ABSL_GUARDED_BY(mu_);
};

class InprocTransport final : public Transport {
 public:
  // Attaches a transport named `address` to `fabric`. AlreadyExists if the name is taken,
  // InvalidArgument if it is empty.
  static absl::StatusOr<std::unique_ptr<InprocTransport>> Create(
      std::shared_ptr<InprocFabric> fabric, const std::string& address,
      const TransportOptions& options);
  // Detaches from the fabric and shuts down. No method may be running concurrently.
  ~InprocTransport() override;

  std::string LocalAddress() const override { return address_; }
  // Unavailable if nothing is attached under `address` at the time of the call.
  absl::Status Connect(PeerId peer, const std::string& address) override;
  void Disconnect(PeerId peer) override;
  // The message is in the receiver's mailbox (or counted as dropped there) when this returns.
  // Unavailable if `peer` is not connected or its address has left the fabric; InvalidArgument
  // if the header or payload exceeds the envelope's limits; Cancelled after Shutdown().
  absl::Status Send(PeerId peer, uint64_t key, const std::string& header, const void* payload,
                    size_t payload_bytes) override;
  using Transport::Receive;
  using Transport::ReceiveAny;
  absl::StatusOr<Message> Receive(PeerId peer, uint64_t key, absl::Duration timeout,
                                  std::stop_token stop) override;
  absl::StatusOr<Message> ReceiveAny(uint64_t key, absl::Duration timeout, std::stop_token stop) override;
  void Shutdown() override;
  uint64_t dropped_messages() const override { return inbox_.dropped(); }

  // Why the last message was dropped (OK if none was): diagnostics and tests.
  absl::Status last_drop() const { return inbox_.last_drop(); }

 private:
  InprocTransport(std::shared_ptr<InprocFabric> fabric, std::string address,
                  const TransportOptions& options);
  friend class InprocFabric;

  const std::shared_ptr<InprocFabric> fabric_;
  const std::string address_;
  const TransportOptions options_;
  Inbox inbox_;
  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<PeerId, std::string> peer_addresses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::transport
