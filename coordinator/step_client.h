// StepClient: a step's traffic at the coordinator's data-plane endpoint: sends each micro-batch to
// the head, and takes the replies (from the tail, or from the worker where one failed) from the
// one inbox they all come to, matched by (step, micro-batch), never by arrival order. The
// scheduler keeps several steps out at once through it (steps_in_flight.h); tests run one step
// at a time with Run.
#pragma once

#include <stop_token>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/step_codec.h"
#include "transport/transport.h"
#include "transport/wire_check.h"

namespace mmx::coordinator {

class StepClient {
 public:
  StepClient(transport::Transport* transport, transport::WireLimits limits)
      : transport_(transport), limits_(limits) {}

  // Sends the micro-batches of one step to `head`. UNAVAILABLE when a send fails.
  absl::Status Send(transport::PeerId head, const std::vector<OutgoingMicroBatch>& micro_batches);
  // The next reply to come, whatever its step: DeadlineExceeded at `deadline`, Cancelled as soon
  // as `stop` is requested (or the transport shut down).
  absl::StatusOr<transport::Message> NextReply(absl::Time deadline, std::stop_token stop);

  // Sends `micro_batches` (of one step) to `head` and returns each one's result, in order;
  // replies to other steps are dropped. Fails with the first error: a send that fails
  // (UNAVAILABLE), a micro-batch's reported error (with its code), a malformed reply (DATA_LOSS),
  // no reply within `timeout` (UNAVAILABLE), or CANCELLED as soon as `stop` is requested (the
  // caller knows why: a worker was lost).
  absl::StatusOr<std::vector<MicroBatchResult>> Run(transport::PeerId head,
                                                    const std::vector<OutgoingMicroBatch>& micro_batches,
                                                    absl::Duration timeout, std::stop_token stop = {});

  const transport::WireLimits& limits() const { return limits_; }

 private:
  transport::Transport* const transport_;
  const transport::WireLimits limits_;
};

}  // namespace mmx::coordinator
