// StageExecutor: what a worker does with a step that reaches it. Depending on its roles it
// embeds the tokens (head), runs its attention layers with their per-sequence state and their
// MoE through whoever holds each expert (worker/decoder_layer.h), forwards the activations to
// the owner of the next layer, and at the tail samples and sends tokens to the coordinator
// (worker/tail.h). The math is the shard's StageCompute (model/stage_compute.h).
//
// Several steps may be in flight (coordinator/scheduler.h): a stage takes them in arrival order
// and forwards each micro-batch to the next stage as soon as its layers here are done, so the
// stages work in a pipeline. Where a stage's layers have experts on other workers, the
// micro-batches of one step run interleaved layer by layer (MegaScale-Infer's ping-pong): the
// attention of one runs while the expert hosts work on another's rows, and a sibling that
// arrives mid-run joins at the next layer; other steps wait their turn (joining, they would
// crowd this stage while the next one idles). Where every expert is local there is nothing to
// overlap: micro-batches run one at a time. Sequences of micro-batches in progress are apart by
// construction (a sequence's next step leaves the coordinator only once its tokens are back); a
// micro-batch naming a sequence that one in progress holds is refused, and the state of a freed
// sequence still in progress goes when that micro-batch leaves.
//
// One thread calls Serve or HandleSteps at a time (the worker's step loop); Abort may come from
// any.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mmx/v1/wire.pb.h"
#include "model/sequence_state.h"
#include "transport/activation_rows.h"
#include "transport/transport.h"
#include "worker/loaded_shard.h"
#include "worker/routes.h"
#include "worker/step_inbox.h"
#include "worker/tail.h"

namespace mmx::worker {

class StageExecutor {
 public:
  StageExecutor(const LoadedShard* shard, transport::Transport* transport, transport::PeerId self,
                Routes routes, absl::Duration reply_timeout);

  // Runs `first`, and the other micro-batches of its step as they arrive through `inbox` while
  // it is in progress; returns when none is. Errors (bad message, missing state, an expert host
  // that does not answer) are returned; when a header parsed, the coordinator is also told (with
  // the error's code), so that the requests of that micro-batch fail at once instead of timing
  // out.
  absl::Status Serve(transport::Message first, StepInbox& inbox);
  // The same for these messages only (tests).
  absl::Status HandleSteps(const std::vector<transport::Message>& messages);
  absl::Status HandleStep(const transport::Message& message) { return HandleSteps({message}); }

  // Restricts sampling (and the returned log-probabilities) to these [begin, end) id ranges;
  // empty = every id.
  void SetSampleableRanges(std::vector<int32_t> ranges) { tail_.SetSampleableRanges(std::move(ranges)); }
  // The dtype of the KV caches of sequences started from now on (the shard config's
  // serving.kv_dtype; default bf16, as the model is served).
  void SetKvDType(DType kv_dtype) { kv_dtype_ = kv_dtype; }
  // How this stage sends activations on (to the next stage and to expert hosts; serving.wire_dtype:
  // fp32 by default, golden-exact). Whatever arrives is read in its own header's dtype.
  void SetWireDType(DType wire_dtype) { rows_dtype_ = transport::RowsDTypeOf(wire_dtype); }

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

  using InProgress = std::list<MicroBatch>;
  // Takes a message: runs what needs no layer of this worker's at once (forwards it), keeps the
  // rest in `active`.
  void Take(transport::Message message, InProgress& active, absl::Status& first_error);
  // Runs every micro-batch in `active` through one layer (each at its own), interleaved; those
  // done here go on to the next stage and leave `active`, as do those that failed.
  void RunOneLayer(InProgress& active, absl::Status& first_error);
  // Some expert of this stage's layers is held only elsewhere: interleaving has something to overlap.
  bool HasRemoteExperts() const;
  absl::Status Run(std::deque<transport::Message> messages, StepInbox* inbox);
  // Takes the message's rows over as the micro-batch's input (no copy when they are fp32).
  absl::Status Prepare(MicroBatch& mb, transport::Message& message);
  // The micro-batch leaves this worker: its sequences are free for the next, and the frees put
  // off for them happen.
  void Release(const MicroBatch& mb);
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
  DType kv_dtype_ = DType::kBF16;
  v1::RowsDType rows_dtype_ = v1::ROWS_FP32;
  transport::EncodedRows forward_rows_;                // step thread
  std::vector<transport::EncodedRows> dispatch_rows_;  // step thread
  std::map<uint64_t, std::unique_ptr<model::SequenceState>> states_;
  std::set<uint64_t> in_progress_;  // sequences of the micro-batches running here
  std::set<uint64_t> free_later_;   // freed while in progress
  Tail tail_;
  std::stop_source abort_;
};

}  // namespace mmx::worker
