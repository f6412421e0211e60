// StageExecutor: what a worker does with a step that reaches it. Depending on its roles it
// embeds the tokens (head), runs its attention layers with their per-sequence state and their
// MoE through whoever holds each expert (worker/decoder_layer.h), forwards the activations to
// the owner of the next layer, and at the tail samples and sends tokens to the coordinator
// (worker/tail.h). The math is the shard's StageCompute (model/stage_compute.h).
//
// Micro-batches of one step run interleaved layer by layer (MegaScale-Infer's ping-pong): the
// attention of micro-batch 1 runs while the expert hosts work on micro-batch 0's rows.
//
// One thread calls HandleSteps at a time (the worker's step loop); Abort may come from any.
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
#include "model/sequence_state.h"
#include "transport/transport.h"
#include "worker/loaded_shard.h"
#include "worker/routes.h"
#include "worker/tail.h"

namespace mmx::worker {

class StageExecutor {
 public:
  StageExecutor(const LoadedShard* shard, transport::Transport* transport, transport::PeerId self,
                Routes routes, absl::Duration reply_timeout);

  // Runs the kStep inbox messages of one step (all its micro-batches that reached this worker).
  // Errors (bad message, missing state, an expert host that does not answer) are returned; when
  // a header parsed, the coordinator is also told (with the error's code), so that the requests
  // of that micro-batch fail at once instead of timing out.
  absl::Status HandleSteps(const std::vector<transport::Message>& messages);
  absl::Status HandleStep(const transport::Message& message) { return HandleSteps({message}); }

  // Restricts sampling (and the returned log-probabilities) to these [begin, end) id ranges;
  // empty = every id.
  void SetSampleableRanges(std::vector<int32_t> ranges) { tail_.SetSampleableRanges(std::move(ranges)); }

  // Makes a running HandleSteps return UNAVAILABLE at once (its peer table was replaced): a wait for
  // an expert host's reply wakes up.
  void Abort() { abort_.request_stop(); }

  size_t live_sequences() const { return states_.size(); }

 private:
  struct MicroBatch;
  class ExpertHosts;

  absl::Status Prepare(MicroBatch& mb, const transport::Message& message);
  // Runs every layer this worker owns over the micro-batches, interleaved.
  void RunLayers(std::vector<MicroBatch>& mbs, absl::Status& first_error);
  absl::Status Forward(MicroBatch& mb);
  absl::Status RunTail(MicroBatch& mb);
  void ReportError(const v1::StepHeader& header, const absl::Status& status);

  const LoadedShard* shard_;
  transport::Transport* transport_;
  transport::PeerId self_;
  Routes routes_;
  absl::Duration reply_timeout_;
  std::map<uint64_t, std::unique_ptr<model::SequenceState>> states_;
  Tail tail_;
  std::stop_source abort_;
};

}  // namespace mmx::worker
