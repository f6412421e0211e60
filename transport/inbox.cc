#include "transport/inbox.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::transport {

absl::Status Inbox::CheckTrust(const Envelope& envelope) {
  absl::Status status;
  if (!envelope.cluster_token.Equals(cluster_token_)) {
    // The token itself stays out of the message: it is the cluster's shared secret.
    status = absl::PermissionDeniedError(absl::StrCat(
        "transport: message from peer ", envelope.sender, " carries a wrong cluster token"));
  } else if (!mailbox_.IsConnected(envelope.sender)) {
    status = absl::UnavailableError(absl::StrCat(
        "transport: message from peer ", envelope.sender, ", which is not a connected peer"));
  }
  if (!status.ok()) CountDrop(status);
  return status;
}

absl::StatusOr<DecodedFrame> Inbox::Admit(absl::string_view frame, uint64_t payload_bytes) {
  absl::StatusOr<DecodedFrame> decoded = DecodeFrame(frame, payload_bytes);
  if (!decoded.ok()) {
    CountDrop(decoded.status());
    return decoded.status();
  }
  MMX_RETURN_IF_ERROR(CheckTrust(decoded->envelope));
  return decoded;
}

absl::StatusOr<Envelope> Inbox::AdmitPrefix(absl::string_view prefix, uint64_t data_bytes) {
  absl::StatusOr<Envelope> envelope = DecodePrefix(prefix);
  if (envelope.ok() && envelope->header_bytes + envelope->payload_bytes != data_bytes) {
    envelope = absl::DataLossError(absl::StrCat(
        "transport envelope: bad payload_bytes: ", envelope->payload_bytes, " plus ",
        envelope->header_bytes, " header bytes but ", data_bytes, " bytes were received"));
  }
  if (!envelope.ok()) {
    CountDrop(envelope.status());
    return envelope.status();
  }
  MMX_RETURN_IF_ERROR(CheckTrust(*envelope));
  return envelope;
}

absl::Status Inbox::VerifyHeader(absl::string_view prefix, absl::string_view header) {
  absl::Status status = VerifyChecksum(prefix, header);
  if (!status.ok()) CountDrop(status);
  return status;
}

void Inbox::Deliver(Message message) {
  const PeerId from = message.from;
  const uint64_t key = message.key;
  if (!mailbox_.Deliver(std::move(message))) {
    CountDrop(absl::UnavailableError(absl::StrCat("transport: message with key ", key,
                                                  " from peer ", from,
                                                  " arrived after it was disconnected")));
  }
}

void Inbox::Accept(absl::string_view frame, const void* payload, size_t payload_bytes) {
  absl::StatusOr<DecodedFrame> decoded = Admit(frame, payload_bytes);
  if (!decoded.ok()) return;
  Message message;
  message.from = decoded->envelope.sender;
  message.key = decoded->envelope.key;
  message.header.assign(decoded->header.data(), decoded->header.size());
  const auto* bytes = static_cast<const uint8_t*>(payload);
  message.payload.assign(bytes, bytes + payload_bytes);
  Deliver(std::move(message));
}

void Inbox::CountDrop(absl::Status reason) {
  absl::MutexLock lock(&mu_);
  ++dropped_;
  last_drop_ = std::move(reason);
}

uint64_t Inbox::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

absl::Status Inbox::last_drop() const {
  absl::MutexLock lock(&mu_);
  return last_drop_;
}

}  // namespace mmx::transport
