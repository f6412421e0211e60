// Inbox: the receive path that InprocTransport and UcxTransport share, so the trust rules of
// transport.h are enforced by one piece of code: decode the envelope (envelope.h), check the
// cluster token, check that the sender is a connected peer, then hand the message to the
// mailbox. Whatever fails a check is dropped and counted, never delivered.
//
// Admission is split from delivery because UCX rendezvous messages are admitted when their
// header arrives (before the receiver allocates the payload) and delivered once the payload has
// been pulled; an eager or in-process message does both at once (Accept).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "transport/envelope.h"
#include "transport/mailbox.h"
#include "transport/transport.h"

namespace mmx::transport {

class Inbox {
 public:
  explicit Inbox(ClusterToken cluster_token) : cluster_token_(cluster_token) {}
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  Mailbox& mailbox() { return mailbox_; }

  // Checks a frame that arrived with `payload_bytes` of payload. On success returns the decoded
  // frame (its header points into `frame`). Otherwise counts one drop and returns: DataLoss for
  // a malformed envelope (DecodeFrame's message names the field), PermissionDenied if the
  // cluster token differs from ours, Unavailable if the sender is not a connected peer.
  absl::StatusOr<DecodedFrame> Admit(absl::string_view frame, uint64_t payload_bytes);

  // Admission in two steps, for a message whose header travels in front of its payload instead
  // of with the prefix (envelope.h, DecodePrefix). AdmitPrefix checks the prefix, that header
  // and payload together are `data_bytes` long ("payload_bytes" otherwise), the token and the
  // sender; VerifyHeader checks the checksum once the header has arrived. Both count a drop on
  // failure and return the codes Admit returns.
  absl::StatusOr<Envelope> AdmitPrefix(absl::string_view prefix, uint64_t data_bytes);
  absl::Status VerifyHeader(absl::string_view prefix, absl::string_view header);

  // Delivers an admitted message to the mailbox. Counts a drop (Unavailable) if its sender was
  // disconnected since Admit, or the mailbox was shut down.
  void Deliver(Message message);

  // Admit + Deliver for a message whose payload is already here; copies header and payload.
  void Accept(absl::string_view frame, const void* payload, size_t payload_bytes);

  // Counts a message lost below the envelope layer (e.g. a failed UCX rendezvous receive).
  void CountDrop(absl::Status reason);

  uint64_t dropped() const;
  // Why the most recent message was dropped (OK if none was): for diagnostics and tests.
  absl::Status last_drop() const;

 private:
  // Token and peer-table checks (PermissionDenied, Unavailable); counts a drop on failure.
  absl::Status CheckTrust(const Envelope& envelope);

  const ClusterToken cluster_token_;
  Mailbox mailbox_;
  mutable absl::Mutex mu_;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_drop_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::transport
