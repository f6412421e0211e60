// The expert host's side of MoE dispatch: runs the rows a stage sent (kDispatch) on the experts
// held here and replies with their results (kCombine), or with an error naming what is wrong.
#pragma once

#include "absl/status/status.h"
#include "transport/transport.h"
#include "worker/loaded_shard.h"

namespace mmx::worker {

// Serves one kDispatch message. Every named expert must be held here (FAILED_PRECONDITION in
// the reply otherwise); the returned status is what the reply said.
absl::Status HandleDispatch(const LoadedShard& shard, transport::Transport* transport,
                            const transport::Message& message);

}  // namespace mmx::worker
