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
#include <optional>
#include <stop_token>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
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

  // Any thread; the step thread takes them at its next layer. New routes of the same sequence
  // epoch (an expert host came back): sequences keep their state.
  void UpdateRoutes(Routes routes);
  // An expert host lost whose experts are all held elsewhere: route around it (the rows of a
  // layer in flight there are sent again to other holders, decoder_layer.h EndLayer).
  void RouteAround(transport::PeerId peer);
  uint64_t sequence_epoch() const { return sequence_epoch_; }

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
  // Applies UpdateRoutes / RouteAround (step thread).
  void RefreshRoutes();

  Routes routes_;  // step thread
  const uint64_t sequence_epoch_;
  absl::Mutex routes_mu_;
  std::optional<Routes> next_routes_ ABSL_GUARDED_BY(routes_mu_);
  std::vector<transport::PeerId> lost_hosts_ ABSL_GUARDED_BY(routes_mu_);
  absl::Duration reply_timeout_;
  std::map<uint64_t, std::unique_ptr<model::SequenceState>> states_;
  Tail tail_;
  std::stop_source abort_;
};

}  // namespace mmx::worker
