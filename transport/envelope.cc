#include "transport/envelope.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "transport/crc32c.h"
#include "transport/little_endian.h"

namespace mmx::transport {
namespace {

// Byte offsets of the prefix fields (docs/protocol.md, "Transport envelope").
constexpr size_t kMagicAt = 0;          // u32
constexpr size_t kVersionAt = 4;        // u16
constexpr size_t kFlagsAt = 6;          // u16, zero in version 1
constexpr size_t kSenderAt = 8;         // u32
constexpr size_t kHeaderBytesAt = 12;   // u32
constexpr size_t kClusterTokenAt = 16;  // u64 low, then u64 high
constexpr size_t kKeyAt = 32;           // u64
constexpr size_t kPayloadBytesAt = 40;  // u64
constexpr size_t kReservedAt = 48;      // u32, zero in version 2
constexpr size_t kChecksumAt = 52;      // u32: CRC-32C of bytes [0, 52) and the header
static_assert(kChecksumAt + 4 == kEnvelopeBytes);

uint32_t FrameChecksum(const char* prefix, absl::string_view header) {
  uint32_t crc = Crc32c(0, prefix, kChecksumAt);
  return Crc32c(crc, header.data(), header.size());
}

absl::Status Corrupt(absl::string_view field, absl::string_view detail) {
  return absl::DataLossError(absl::StrCat("transport envelope: bad ", field, ": ", detail));
}

}  // namespace

absl::Status EncodeFrame(const Envelope& envelope, absl::string_view header, std::string* frame) {
  if (header.size() > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("transport: header of ", header.size(),
                                                   " bytes exceeds the limit of ",
                                                   kMaxHeaderBytes));
  }
  if (envelope.payload_bytes > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(absl::StrCat("transport: payload of ",
                                                   envelope.payload_bytes,
                                                   " bytes exceeds the limit of ",
                                                   kMaxPayloadBytes));
  }
  frame->assign(kEnvelopeBytes, '\0');
  char* p = frame->data();
  PutLE(p + kMagicAt, kEnvelopeMagic, 4);
  PutLE(p + kVersionAt, kEnvelopeVersion, 2);
  PutLE(p + kSenderAt, envelope.sender, 4);
  PutLE(p + kHeaderBytesAt, header.size(), 4);
  PutLE(p + kClusterTokenAt, envelope.cluster_token.low, 8);
  PutLE(p + kClusterTokenAt + 8, envelope.cluster_token.high, 8);
  PutLE(p + kKeyAt, envelope.key, 8);
  PutLE(p + kPayloadBytesAt, envelope.payload_bytes, 8);
  PutLE(p + kChecksumAt, FrameChecksum(p, header), 4);
  frame->append(header.data(), header.size());
  return absl::OkStatus();
}

absl::StatusOr<Envelope> DecodePrefix(absl::string_view prefix) {
  if (prefix.size() != kEnvelopeBytes) {
    return Corrupt("frame size", absl::StrCat(prefix.size(), " bytes of prefix, expected ",
                                              kEnvelopeBytes));
  }
  const char* p = prefix.data();
  if (uint64_t magic = GetLE(p + kMagicAt, 4); magic != kEnvelopeMagic) {
    return Corrupt("magic", absl::StrCat("0x", absl::Hex(magic), ", expected 0x",
                                         absl::Hex(kEnvelopeMagic)));
  }
  if (uint64_t version = GetLE(p + kVersionAt, 2); version != kEnvelopeVersion) {
    return Corrupt("version", absl::StrCat(version, ", this build speaks ", kEnvelopeVersion));
  }
  if (uint64_t flags = GetLE(p + kFlagsAt, 2); flags != 0) {
    return Corrupt("flags", absl::StrCat("0x", absl::Hex(flags), ", must be 0 in version 2"));
  }
  if (uint64_t reserved = GetLE(p + kReservedAt, 4); reserved != 0) {
    return Corrupt("reserved", absl::StrCat("0x", absl::Hex(reserved),
                                            ", must be 0 in version 2"));
  }
  Envelope envelope;
  const uint64_t header_bytes = GetLE(p + kHeaderBytesAt, 4);
  if (header_bytes > kMaxHeaderBytes) {
    return Corrupt("header_bytes",
                   absl::StrCat(header_bytes, " exceeds the limit of ", kMaxHeaderBytes));
  }
  envelope.header_bytes = static_cast<uint32_t>(header_bytes);
  envelope.payload_bytes = GetLE(p + kPayloadBytesAt, 8);
  if (envelope.payload_bytes > kMaxPayloadBytes) {
    return Corrupt("payload_bytes", absl::StrCat(envelope.payload_bytes,
                                                 " exceeds the limit of ", kMaxPayloadBytes));
  }
  envelope.sender = static_cast<PeerId>(GetLE(p + kSenderAt, 4));
  envelope.cluster_token.low = GetLE(p + kClusterTokenAt, 8);
  envelope.cluster_token.high = GetLE(p + kClusterTokenAt + 8, 8);
  envelope.key = GetLE(p + kKeyAt, 8);
  return envelope;
}

absl::Status VerifyChecksum(absl::string_view prefix, absl::string_view header) {
  if (prefix.size() != kEnvelopeBytes) {
    return Corrupt("frame size", absl::StrCat(prefix.size(), " bytes of prefix, expected ",
                                              kEnvelopeBytes));
  }
  const uint64_t checksum = GetLE(prefix.data() + kChecksumAt, 4);
  if (uint32_t actual = FrameChecksum(prefix.data(), header); actual != checksum) {
    return Corrupt("checksum", absl::StrCat("0x", absl::Hex(checksum), ", computed 0x",
                                            absl::Hex(actual)));
  }
  return absl::OkStatus();
}

absl::StatusOr<DecodedFrame> DecodeFrame(absl::string_view frame, uint64_t received_payload_bytes) {
  if (frame.size() < kEnvelopeBytes) {
    return Corrupt("frame size", absl::StrCat(frame.size(), " bytes, shorter than the ",
                                              kEnvelopeBytes, "-byte prefix"));
  }
  DecodedFrame decoded;
  const absl::string_view prefix = frame.substr(0, kEnvelopeBytes);
  absl::StatusOr<Envelope> envelope = DecodePrefix(prefix);
  if (!envelope.ok()) return envelope.status();
  decoded.envelope = *envelope;
  decoded.header = frame.substr(kEnvelopeBytes);
  if (envelope->header_bytes != decoded.header.size()) {
    return Corrupt("header_bytes", absl::StrCat(envelope->header_bytes, " but ",
                                                decoded.header.size(),
                                                " bytes follow the prefix"));
  }
  if (envelope->payload_bytes != received_payload_bytes) {
    return Corrupt("payload_bytes", absl::StrCat(envelope->payload_bytes, " but ",
                                                 received_payload_bytes, " bytes were received"));
  }
  MMX_RETURN_IF_ERROR(VerifyChecksum(prefix, decoded.header));
  return decoded;
}

}  // namespace mmx::transport
