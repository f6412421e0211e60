// Match keys of the data-plane messages (transport/transport.h matches by key, never by
// arrival order). Inbox kinds use one fixed key per kind, received FIFO with ReceiveAny; replies
// use a key unique to (kind, step, micro-batch, layer), received from the one peer expected.
//
//   bits 63..60  kind
//   bits 59..20  step id (low 40 bits)
//   bits 19..12  micro-batch
//   bits 11..0   layer + 1
#pragma once

#include <cstdint>

namespace mmx::transport {

enum class MessageKind : uint64_t {
  kStep = 1,      // StepHeader: tokens to the head, activations stage to stage (inbox)
  kDispatch = 2,  // DispatchHeader: rows to an expert host (inbox)
  kCombine = 3,   // CombineHeader: expert results back to the stage (reply)
  kTokens = 4,    // TokensHeader: sampled tokens to the coordinator (reply)
};

inline uint64_t InboxKey(MessageKind kind) { return static_cast<uint64_t>(kind) << 60; }

inline uint64_t ReplyKey(MessageKind kind, uint64_t step, uint32_t micro_batch, int layer) {
  return (static_cast<uint64_t>(kind) << 60) | ((step & ((uint64_t{1} << 40) - 1)) << 20) |
         ((static_cast<uint64_t>(micro_batch) & 0xff) << 12) |
         (static_cast<uint64_t>(layer + 1) & 0xfff);
}

}  // namespace mmx::transport
