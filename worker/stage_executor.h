// StageExecutor: what a worker does with a step that reaches it. Depending on its roles it
// embeds the tokens (head), runs its attention layers with their per-sequence state, sends each
// layer's routed rows to the expert hosts and sums their replies (dispatch/combine), forwards
// the activations to the owner of the next layer, and at the tail samples and sends tokens to
// the coordinator. The math is the shard's StageCompute (model/stage_compute.h): model/layers.h's
// functions, the same the local engine calls, or on a GPU worker the same recipe on the GPU.
//
// Micro-batches of one step run interleaved layer by layer (MegaScale-Infer's ping-pong): the
// attention of micro-batch 1 runs while the expert hosts work on micro-batch 0's rows.
//
// One thread calls HandleSteps at a time (the worker's step loop).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stop_token>
#include <vector>

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

  // Runs the kStep inbox messages of one step (all its micro-batches that reached this worker).
  // Errors (bad message, missing state, an expert host that does not answer) are returned; when
  // a header parsed, the coordinator is also told, so that the requests of that micro-batch
  // fail at once instead of timing out.
  absl::Status HandleSteps(const std::vector<transport::Message>& messages);
  absl::Status HandleStep(const transport::Message& message) { return HandleSteps({message}); }

  // Restricts sampling (and the returned log-probabilities) to these [begin, end) id ranges;
  // empty = every id.
  void SetSampleableRanges(std::vector<int32_t> ranges) { sampleable_ranges_ = std::move(ranges); }

  // Makes a running HandleSteps return Aborted at once (its peer table was replaced): a wait for
  // an expert host's reply wakes up.
  void Abort() { abort_.request_stop(); }

  // Drops every sequence's state and sampler (the cluster was reset).
  void Reset();
  size_t live_sequences() const { return states_.size(); }

 private:
  struct MicroBatch;
  struct PendingMoe;

  absl::Status Prepare(MicroBatch& mb, const transport::Message& message);
  absl::Status StartMoe(MicroBatch& mb, int layer);
  absl::Status FinishMoe(MicroBatch& mb, int layer);
  // Tail: logits, sampling, and the reply to the coordinator (tokens, requested logits, timings).
  absl::Status RunTail(MicroBatch& mb);
  // Sets the logits of ids outside the sampleable ranges to -inf.
  void MaskUnsampleable(float* row, int64_t vocab) const;
  absl::Status Forward(MicroBatch& mb);
  void ReportError(const v1::StepHeader& header, const absl::Status& status);

  const LoadedShard* shard_;
  transport::Transport* transport_;
  transport::PeerId self_;
  Routes routes_;
  absl::Duration reply_timeout_;
  std::map<uint64_t, std::unique_ptr<model::SequenceState>> states_;
  std::map<uint64_t, std::unique_ptr<model::Sampler>> samplers_;
  std::vector<int32_t> sampleable_ranges_;
  std::stop_source abort_;
};

// Serves kDispatch inbox messages: runs the pairs on the experts held here and replies to each
// sender with a kCombine message (or an error reply if a named expert is not held here).
absl::Status HandleDispatch(const LoadedShard& shard, transport::Transport* transport,
                            const transport::Message& message);

}  // namespace mmx::worker
