#include "transport/inproc_transport.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "transport/envelope.h"

namespace mmx::transport {

absl::Status InprocFabric::Attach(const std::string& address, InprocTransport* transport) {
  absl::WriterMutexLock lock(&mu_);
  if (!attached_.emplace(address, transport).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("inproc fabric: address '", address, "' is already attached"));
  }
  return absl::OkStatus();
}

void InprocFabric::Detach(const std::string& address) {
  absl::WriterMutexLock lock(&mu_);
  attached_.erase(address);
}

bool InprocFabric::HasAddress(const std::string& address) const {
  absl::ReaderMutexLock lock(&mu_);
  return attached_.contains(address);
}

absl::Status InprocFabric::DeliverRaw(const std::string& address, absl::string_view frame,
                                      const void* payload, size_t payload_bytes) {
  absl::ReaderMutexLock lock(&mu_);
  auto found = attached_.find(address);
  if (found == attached_.end()) {
    return absl::UnavailableError(
        absl::StrCat("inproc fabric: nothing attached under address '", address, "'"));
  }
  found->second->inbox_.Accept(frame, payload, payload_bytes);
  return absl::OkStatus();
}

InprocTransport::InprocTransport(std::shared_ptr<InprocFabric> fabric, std::string address,
                                 const TransportOptions& options)
    : fabric_(std::move(fabric)),
      address_(std::move(address)),
      options_(options),
      inbox_(options.cluster_token) {}

absl::StatusOr<std::unique_ptr<InprocTransport>> InprocTransport::Create(
    std::shared_ptr<InprocFabric> fabric, const std::string& address,
    const TransportOptions& options) {
  if (fabric == nullptr) return absl::InvalidArgumentError("inproc transport: no fabric");
  if (address.empty()) return absl::InvalidArgumentError("inproc transport: empty address");
  std::unique_ptr<InprocTransport> transport(new InprocTransport(fabric, address, options));
  MMX_RETURN_IF_ERROR(fabric->Attach(address, transport.get()));
  return transport;
}

InprocTransport::~InprocTransport() {
  fabric_->Detach(address_);  // after this no delivery can reach us
  Shutdown();
}

absl::Status InprocTransport::Connect(PeerId peer, const std::string& address) {
  if (!fabric_->HasAddress(address)) {
    return absl::UnavailableError(absl::StrCat("inproc transport: cannot connect peer ", peer,
                                               ": nothing attached under '", address, "'"));
  }
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::CancelledError("inproc transport: shut down");
  peer_addresses_[peer] = address;
  inbox_.mailbox().Connect(peer);
  return absl::OkStatus();
}

void InprocTransport::Disconnect(PeerId peer) {
  absl::MutexLock lock(&mu_);
  peer_addresses_.erase(peer);
  inbox_.mailbox().Disconnect(peer);
}

absl::Status InprocTransport::Send(PeerId peer, uint64_t key, const std::string& header,
                                   const void* payload, size_t payload_bytes) {
  std::string address;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return absl::CancelledError("inproc transport: shut down");
    auto found = peer_addresses_.find(peer);
    if (found == peer_addresses_.end()) {
      return absl::UnavailableError(
          absl::StrCat("inproc transport: peer ", peer, " is not connected"));
    }
    address = found->second;
  }
  Envelope envelope;
  envelope.sender = options_.self;
  envelope.cluster_token = options_.cluster_token;
  envelope.key = key;
  envelope.payload_bytes = payload_bytes;
  std::string frame;
  MMX_RETURN_IF_ERROR(EncodeFrame(envelope, header, &frame));
  return fabric_->DeliverRaw(address, frame, payload, payload_bytes);
}

absl::StatusOr<Message> InprocTransport::Receive(PeerId peer, uint64_t key, absl::Duration timeout,
                                                std::stop_token stop) {
  return inbox_.mailbox().Receive(peer, key, timeout, std::move(stop));
}

absl::StatusOr<Message> InprocTransport::ReceiveAny(uint64_t key, absl::Duration timeout, std::stop_token stop) {
  return inbox_.mailbox().ReceiveAny(key, timeout, std::move(stop));
}

void InprocTransport::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  peer_addresses_.clear();
  inbox_.mailbox().Shutdown();
}

}  // namespace mmx::transport
