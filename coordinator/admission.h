// Admission: which waiting requests join the running batch. Pure bookkeeping over the waiting
// room (coordinator/waiting_room.h) and the state budget (coordinator/state_budget.h); the
// scheduler fails the refused requests, counts them, and carries out preemptions.
//
// Interactive requests come first. Job requests may hold at most a share of the running
// sequences (--max-job-share), so some slots are always an interactive request's; and when an
// interactive request finds no slot or no state memory while job requests run, the scheduler
// preempts one (its state is freed; it goes back to the waiting room first in its job and is
// rebuilt by replay when admitted again), so it never waits on a job for more than the step in
// flight.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/request.h"
#include "coordinator/state_budget.h"
#include "coordinator/waiting_room.h"

namespace mmx::coordinator {

struct Refusal {
  ScheduledRequest entry;
  absl::Status status;  // what the request ends with
};

struct Admitted {
  std::vector<ScheduledRequest> admitted;  // interactive ones first, each queue in its fair order
  std::vector<Refusal> refused;
};

struct AdmissionRoom {
  int slots = 0;      // running sequences that may still be added
  int job_slots = 0;  // of those, how many job requests may take
};

// Takes one running job request out of the batch (releasing its slot and its reservation in the
// budget) for an interactive request; false when no job request is running.
using PreemptJob = std::function<bool()>;

// The jobs' share of `max_sequences`: at least one slot, so a job can run at all.
int JobSlots(int max_sequences, double max_job_share);

// Interactive requests first, then job requests round-robin over jobs, while there is room: a
// cancelled one is refused (CANCELLED); one whose state no stage could ever hold is refused
// (RESOURCE_EXHAUSTED, saying how much it needs where); an interactive request without a slot
// or state memory preempts job requests (`preempt`) until it has them, or stops its queue's
// admission when there are none; the first job request that must wait for state stops the jobs'
// admission. Whoever stops admission keeps its turn. Each admitted request holds its reservation
// in `budget` until the scheduler releases it.
Admitted AdmitWaiting(WaitingRoom& waiting, StateBudget& budget, AdmissionRoom room, const PreemptJob& preempt);

// While the cluster is not ready: waiting requests that were cancelled (CANCELLED), or that
// waited longer than `timeout` (UNAVAILABLE with `not_ready_reason`), leave the queue.
std::vector<Refusal> ExpireWaiting(WaitingRoom& waiting, absl::Time now, absl::Duration timeout,
                                   const std::string& not_ready_reason);

// When the first waiting request will have waited `timeout` (InfiniteFuture if none waits).
absl::Time NextExpiry(const WaitingRoom& waiting, absl::Duration timeout);

}  // namespace mmx::coordinator
