// StepInbox: the kStep messages that reach this worker, in arrival order. The stage executor
// takes the first one blocking (Next) and, while it runs, the ones it can run alongside
// (PollFor: the other micro-batches of a step in progress); the rest keep their order for the
// next Next.
#pragma once

#include <deque>
#include <functional>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transport/transport.h"

namespace mmx::worker {

class StepInbox {
 public:
  explicit StepInbox(transport::Transport* transport) : transport_(transport) {}

  // The oldest message kept, or waits up to `timeout` for the next: the transport's status
  // otherwise (DeadlineExceeded, Cancelled after Shutdown).
  absl::StatusOr<transport::Message> Next(absl::Duration timeout);
  // The oldest message here now (kept or arrived) that `wanted` accepts; the others are kept.
  std::optional<transport::Message> PollFor(const std::function<bool(const transport::Message&)>& wanted);

 private:
  transport::Transport* const transport_;
  std::deque<transport::Message> kept_;
};

}  // namespace mmx::worker
