// StepsInFlight: the steps the scheduler has out at once, at most one per wave (scheduler.h), and
// their replies as they come back. A reply is matched to its step and micro-batch by the ids in
// its header; a step is done when every micro-batch of it replied. Replies to a step it no longer
// holds (voided by a failover, or not of this coordinator) are dropped. It sets and clears the
// members' Request::in_flight; nothing else here touches the requests.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/request.h"
#include "coordinator/step_client.h"
#include "coordinator/step_codec.h"
#include "coordinator/step_planner.h"

namespace mmx::coordinator {

class StepsInFlight {
 public:
  struct Step {
    int wave = 0;
    std::string group;  // the attention group whose head it went to
    uint64_t step_id = 0;
    absl::Time sent_at;
    size_t out_at_send = 0;  // steps out once it was sent, itself included
    StepPlan plan;
    std::vector<std::vector<std::shared_ptr<Request>>> members;  // per micro-batch, as planned
    std::vector<OutgoingMicroBatch> sent;
    // Per micro-batch once it replied: its result, or the error it reported.
    std::vector<std::optional<absl::StatusOr<MicroBatchResult>>> replies;
    size_t replied = 0;
  };

  explicit StepsInFlight(StepClient client) : client_(std::move(client)) {}

  // Sends `step` (its `sent` micro-batches) to `head` and holds it until every reply is in. A
  // send that fails is returned; the step is held all the same (the failover that follows voids it).
  absl::Status Launch(Step step, transport::PeerId head);

  // Waits until `deadline` or `stop` for one reply and files it. Returns the step it completed;
  // none when the wait ended first or the step still waits for others. An error when a
  // micro-batch failed for want of a peer (UNAVAILABLE, DEADLINE_EXCEEDED: a worker unreachable
  // or silent), returned at once since the cluster must act on it; other errors are the step's
  // (in its replies), and so are the micro-batches that ran.
  absl::StatusOr<std::optional<Step>> Receive(absl::Time deadline, std::stop_token stop);

  // A failover voided them: their requests are not in flight anymore, later replies are dropped.
  void VoidAll();

  bool busy(int wave) const;
  size_t size() const { return steps_.size(); }
  // The step sent longest ago (0 and InfiniteFuture when none): its tokens are due first.
  uint64_t oldest_step() const;
  absl::Time oldest_sent() const;

 private:
  StepClient client_;
  std::map<uint64_t, Step> steps_;  // by step id
};

}  // namespace mmx::coordinator
