// A data-plane message as a worker receives it: the envelope (prefix and header, whole or in
// two steps as UCX delivers large headers), the trust check, then every message kind's header
// and payload checks (wire_check.h) against a small model's limits. Input: the frame's length
// (2 bytes, little-endian), the frame, then the payload.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "transport/envelope.h"
#include "transport/inbox.h"
#include "transport/wire_check.h"

namespace {

using namespace mmx::transport;

void CheckEveryKind(const Message& message) {
  const WireLimits limits{/*hidden_size=*/64, /*vocab_size=*/512, /*num_layers=*/4, /*num_experts=*/8};
  (void)CheckStep(message, limits);
  (void)CheckDispatch(message, limits);
  for (int64_t rows : {0, 1, 3}) (void)CheckCombine(message, limits, rows);
  (void)CheckTokens(message, limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t frame_bytes = std::min<size_t>(size - 2, size_t{data[0]} | size_t{data[1]} << 8);
  const std::string frame(reinterpret_cast<const char*>(data + 2), frame_bytes);
  const std::string payload(reinterpret_cast<const char*>(data + 2 + frame_bytes), size - 2 - frame_bytes);

  static Inbox* inbox = [] {
    auto* box = new Inbox(ClusterToken{0x1111, 0x2222});
    for (PeerId peer = 0; peer < 8; ++peer) box->mailbox().Connect(peer);
    return box;
  }();
  if (frame.size() >= kEnvelopeBytes) {  // the split form: prefix first, the header after
    auto prefix = DecodePrefix(absl::string_view(frame).substr(0, kEnvelopeBytes));
    if (prefix.ok()) (void)VerifyChecksum(frame.substr(0, kEnvelopeBytes), frame.substr(kEnvelopeBytes));
  }
  auto admitted = inbox->Admit(frame, payload.size());
  auto decoded = DecodeFrame(frame, payload.size());
  if (!decoded.ok()) return 0;
  Message message;
  message.from = decoded->envelope.sender;
  message.key = decoded->envelope.key;
  message.header = std::string(decoded->header);
  message.payload.assign(payload.begin(), payload.end());
  CheckEveryKind(message);
  (void)admitted;
  return 0;
}
