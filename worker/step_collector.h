// StepCollector: gathers the micro-batches of one step that reach this worker at the same layer,
// so that the stage can run them interleaved (ping-pong). Messages of other steps or layers that
// arrive meanwhile are kept for the next call, in arrival order.
#pragma once

#include <deque>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transport/transport.h"

namespace mmx::worker {

class StepCollector {
 public:
  // `wait_for_rest`: how long to wait for a step's other micro-batches once its first is here
  // (a micro-batch that failed upstream never comes; the ones that did still run).
  StepCollector(transport::Transport* transport, absl::Duration wait_for_rest)
      : transport_(transport), wait_for_rest_(wait_for_rest) {}

  // Waits up to `timeout` for a step's first message, then for its siblings. Returns the group
  // (at least one message), or the transport's status (DeadlineExceeded, Cancelled, ...).
  absl::StatusOr<std::vector<transport::Message>> Next(absl::Duration timeout);

 private:
  absl::StatusOr<transport::Message> Pop(absl::Duration timeout);

  transport::Transport* transport_;
  absl::Duration wait_for_rest_;
  std::deque<transport::Message> stash_;
};

}  // namespace mmx::worker
