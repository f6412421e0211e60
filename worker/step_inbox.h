// StepInbox: the kStep messages that reach this worker, in arrival order. The stage executor
// takes the first one blocking and the rest as it goes (Poll between layers, so a micro-batch
// that arrives mid-run joins at the next layer instead of waiting for the run to end). A message
// the executor must not take (one of a newer sequence epoch, for the executor that replaces it)
// is put back and comes out first.
#pragma once

#include <deque>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transport/transport.h"

namespace mmx::worker {

class StepInbox {
 public:
  explicit StepInbox(transport::Transport* transport) : transport_(transport) {}

  // Waits up to `timeout` for the next message: the transport's status otherwise
  // (DeadlineExceeded, Cancelled after Shutdown).
  absl::StatusOr<transport::Message> Next(absl::Duration timeout);
  // The next message if one is here now.
  std::optional<transport::Message> Poll();
  void PutBack(transport::Message message) { put_back_.push_front(std::move(message)); }

 private:
  transport::Transport* const transport_;
  std::deque<transport::Message> put_back_;
};

}  // namespace mmx::worker
