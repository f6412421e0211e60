// Transport envelope: the fixed little-endian prefix every transport message starts with, in
// front of the caller's header bytes. The layout is drawn in docs/protocol.md ("Transport
// envelope"); this file is its only codec.
//
//   frame   = prefix (kEnvelopeBytes) + caller header (header_bytes)
//   payload = payload_bytes, carried beside the frame (UCX: the active message's data; it may
//             arrive later by rendezvous, so the frame states its size up front)
//
// Decode is the trust boundary for bytes from the network: every field is checked before use
// and the first bad one is named in a DataLoss status. It does NOT check the sender or the
// cluster token against the peer table: that is the receiving transport's job (inbox.h), since
// only it knows the table.
//
// Not here: the payload's integrity (the transports underneath are reliable; a checksum over
// megabytes of activations would cost more than it protects) and any encryption.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "transport/transport.h"

namespace mmx::transport {

inline constexpr uint32_t kEnvelopeMagic = 0x54584D4Du;  // bytes "MMXT" on the wire
inline constexpr uint16_t kEnvelopeVersion = 2;  // 2: the cluster token has 128 bits
inline constexpr size_t kEnvelopeBytes = 56;
// Limits a receiver enforces before it allocates anything for a message.
inline constexpr size_t kMaxHeaderBytes = size_t{64} << 10;     // 64 KiB
inline constexpr uint64_t kMaxPayloadBytes = uint64_t{4} << 30;  // 4 GiB

struct Envelope {
  PeerId sender = 0;
  ClusterToken cluster_token;
  uint64_t key = 0;
  uint32_t header_bytes = 0;  // set by EncodeFrame from the header it is given
  uint64_t payload_bytes = 0;
};

// Writes the frame for `envelope` and `header` into *frame (replacing its contents). The checksum
// covers the prefix and the header. InvalidArgument if the header exceeds kMaxHeaderBytes or
// payload_bytes exceeds kMaxPayloadBytes (*frame is then unspecified). Thread-safe.
absl::Status EncodeFrame(const Envelope& envelope, absl::string_view header, std::string* frame);

struct DecodedFrame {
  Envelope envelope;
  absl::string_view header;  // points into the frame passed to DecodeFrame
};

// Decodes `frame` (exactly prefix + header, as received) that arrived with a payload of
// `received_payload_bytes`. Returns DataLoss naming the first bad field, checked in this order:
// "frame size" (shorter than the prefix), "magic", "version", "flags" and "reserved" (must be
// zero in version 1), "header_bytes" and "payload_bytes" over their limits, "header_bytes" not
// equal to the bytes that follow the prefix, "payload_bytes" not equal to the received payload,
// "checksum". Never reads outside `frame`. Thread-safe.
absl::StatusOr<DecodedFrame> DecodeFrame(absl::string_view frame, uint64_t received_payload_bytes);

// The same checks in two steps, for a frame whose header travels apart from its prefix (UCX
// sends headers too large for an active-message header in front of the payload):
// DecodePrefix checks everything but the header's length against the bytes that follow and the
// checksum ("frame size" if `prefix` is not exactly kEnvelopeBytes long); VerifyChecksum checks
// the checksum once the header is at hand. DataLoss naming the field, as above.
absl::StatusOr<Envelope> DecodePrefix(absl::string_view prefix);
absl::Status VerifyChecksum(absl::string_view prefix, absl::string_view header);

}  // namespace mmx::transport
