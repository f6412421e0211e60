// Admission: which waiting requests join the running batch. Pure bookkeeping over the fair
// queue (coordinator/fair_queue.h) and the state budget (coordinator/state_budget.h); the
// scheduler fails the refused requests and counts them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/fair_queue.h"
#include "coordinator/request.h"
#include "coordinator/state_budget.h"

namespace mmx::coordinator {

// A request in the scheduler's hands, waiting or running.
struct ScheduledRequest {
  std::shared_ptr<Request> request;
  absl::Time queued_at;
  absl::Time last_token_at = absl::InfinitePast();
};

struct Refusal {
  ScheduledRequest entry;
  absl::Status status;  // what the request ends with
};

struct Admitted {
  std::vector<ScheduledRequest> admitted;  // in the queue's fair order
  std::vector<Refusal> refused;
};

// Takes requests off the queue in its order while fewer than `room` were admitted: a cancelled
// one is refused (CANCELLED); one whose state no stage could ever hold is refused
// (RESOURCE_EXHAUSTED, saying how much it needs where); the first one that must wait for state
// to be freed stops admission and keeps its turn. Each admitted request holds its reservation
// in `budget` until the scheduler releases it.
Admitted AdmitWaiting(FairQueue<ScheduledRequest>& queue, StateBudget& budget, int room);

// While the cluster is not ready: waiting requests that were cancelled (CANCELLED), or that
// waited longer than `timeout` (UNAVAILABLE with `not_ready_reason`), leave the queue.
std::vector<Refusal> ExpireWaiting(FairQueue<ScheduledRequest>& queue, absl::Time now, absl::Duration timeout,
                                   const std::string& not_ready_reason);

// When the first waiting request will have waited `timeout` (InfiniteFuture if none waits).
absl::Time NextExpiry(const FairQueue<ScheduledRequest>& queue, absl::Duration timeout);

}  // namespace mmx::coordinator
