// StageExecutor: what a worker does with a step that reaches it. Depending on its roles it
// embeds the tokens (head), runs its attention layers with their per-sequence state, sends each
// layer's routed rows to the expert hosts and sums their replies (dispatch/combine), forwards
// the activations to the owner of the next layer, and at the tail samples and sends tokens to
// the coordinator. The math is model/layers.h's, the same functions the local engine calls.
//
// One thread calls HandleStep at a time (the worker's step loop).
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "mmx/v1/wire.pb.h"
#include "model/layers.h"
#include "model/sampling.h"
#include "model/sequence_state.h"
#include "transport/transport.h"
#include "worker/loaded_shard.h"
#include "worker/routes.h"

namespace mmx::worker {

class StageExecutor {
 public:
  StageExecutor(const LoadedShard* shard, transport::Transport* transport, transport::PeerId self,
                Routes routes, absl::Duration reply_timeout);

  // Runs one kStep inbox message. Errors (bad message, missing state, an expert host that does
  // not answer) are returned; when the header parsed, the coordinator is also told, so that the
  // requests in that step fail at once instead of timing out.
  absl::Status HandleStep(const transport::Message& message);

  // Drops every sequence's state and sampler (the cluster was reset).
  void Reset();
  size_t live_sequences() const { return states_.size(); }

 private:
  absl::Status Run(const v1::StepHeader& header, const transport::Message& message);
  absl::Status RunMoe(const v1::StepHeader& header, int layer, int64_t num_tokens,
                      const model::Routing& routing, const float* w, float* m);
  absl::Status RunTail(const v1::StepHeader& header, const float* x);
  absl::Status Forward(v1::StepHeader header, int layer, const float* x, int64_t num_tokens);
  void ReportError(const v1::StepHeader& header, const absl::Status& status);

  const LoadedShard* shard_;
  transport::Transport* transport_;
  transport::PeerId self_;
  Routes routes_;
  absl::Duration reply_timeout_;
  std::map<uint64_t, std::unique_ptr<model::SequenceState>> states_;
  std::map<uint64_t, std::unique_ptr<model::Sampler>> samplers_;
};

// Serves a kDispatch inbox message: runs the pairs on the experts held here and replies with a
// kCombine message to the sender (or an error reply if a named expert is not held here).
absl::Status HandleDispatch(const LoadedShard& shard, transport::Transport* transport,
                            const transport::Message& message);

}  // namespace mmx::worker
