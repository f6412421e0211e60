// StepClient: runs one step on the cluster from the coordinator's data-plane endpoint: sends
// each micro-batch to the head and waits for each one's reply (from the tail, or from the worker
// where it failed), matched by (step, micro-batch), never by arrival order. The scheduler runs
// its steps through it; tests drive the workers with it directly.
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

  // Sends `micro_batches` (of one step) to `head` and returns each one's result, in order.
  // Fails with the first error: a send that fails (UNAVAILABLE), a micro-batch's reported error
  // (with its code), a malformed reply (DATA_LOSS), no reply within `timeout` (UNAVAILABLE), or
  // CANCELLED as soon as `stop` is requested (the caller knows why: a worker was lost).
  absl::StatusOr<std::vector<MicroBatchResult>> Run(transport::PeerId head,
                                                    const std::vector<OutgoingMicroBatch>& micro_batches,
                                                    absl::Duration timeout, std::stop_token stop = {});

 private:
  transport::Transport* const transport_;
  const transport::WireLimits limits_;
};

}  // namespace mmx::coordinator
