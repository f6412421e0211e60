#include "coordinator/admission.h"

#include <algorithm>
#include <cmath>

namespace mmx::coordinator {
namespace {

enum class Outcome { kAdmitted, kRefused, kWait };

// The front of `queue`: refused, admitted, or left waiting for state.
Outcome TryFront(FairQueue<ScheduledRequest>& queue, StateBudget& budget, Admitted& out) {
  ScheduledRequest& front = queue.Front();
  if (front.request->cancelled()) {
    out.refused.push_back({queue.Pop(), absl::CancelledError("cancelled by the client")});
    return Outcome::kRefused;
  }
  std::string why;
  switch (budget.TryReserve(front.request->id(), front.request->params().max_positions(), &why)) {
    case StateBudget::Admission::kWait:
      return Outcome::kWait;
    case StateBudget::Admission::kNever:
      out.refused.push_back({queue.Pop(), absl::ResourceExhaustedError(why)});
      return Outcome::kRefused;
    case StateBudget::Admission::kAdmitted:
      break;
  }
  out.admitted.push_back(queue.Pop());
  return Outcome::kAdmitted;
}

}  // namespace

int JobSlots(int max_sequences, double max_job_share) {
  return std::max(1, static_cast<int>(std::floor(max_job_share * max_sequences + 1e-9)));
}

Admitted AdmitWaiting(WaitingRoom& waiting, StateBudget& budget, AdmissionRoom room, const PreemptJob& preempt) {
  Admitted out;
  FairQueue<ScheduledRequest>& interactive = waiting.interactive();
  while (!interactive.empty()) {
    // A slot, or a job request's; after a preemption the same request tries again.
    if (room.slots <= 0 && !interactive.Front().request->cancelled()) {
      if (!preempt()) break;
      ++room.slots;
      ++room.job_slots;
      continue;
    }
    const Outcome outcome = TryFront(interactive, budget, out);
    if (outcome == Outcome::kAdmitted) --room.slots;
    if (outcome != Outcome::kWait) continue;
    if (!preempt()) break;  // state held by interactive requests only: wait for them
    ++room.slots;
    ++room.job_slots;
  }
  FairQueue<ScheduledRequest>& jobs = waiting.jobs();
  while (!jobs.empty() && room.slots > 0 && room.job_slots > 0) {
    const Outcome outcome = TryFront(jobs, budget, out);
    if (outcome == Outcome::kWait) break;
    if (outcome == Outcome::kAdmitted) {
      --room.slots;
      --room.job_slots;
    }
  }
  return out;
}

std::vector<Refusal> ExpireWaiting(WaitingRoom& waiting, absl::Time now, absl::Duration timeout,
                                   const std::string& not_ready_reason) {
  std::vector<Refusal> refused;
  waiting.RemoveIf(
      [&](const ScheduledRequest& s) { return s.request->cancelled() || now - s.queued_at > timeout; },
      [&](ScheduledRequest& s) {
        refused.push_back({s, s.request->cancelled() ? absl::CancelledError("cancelled by the client")
                                                     : absl::UnavailableError(not_ready_reason)});
      });
  return refused;
}

absl::Time NextExpiry(const WaitingRoom& waiting, absl::Duration timeout) {
  absl::Time first = absl::InfiniteFuture();
  waiting.ForEach([&](const ScheduledRequest& s) { first = std::min(first, s.queued_at + timeout); });
  return first;
}

}  // namespace mmx::coordinator
