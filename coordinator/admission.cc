#include "coordinator/admission.h"

#include <algorithm>

namespace mmx::coordinator {

Admitted AdmitWaiting(FairQueue<ScheduledRequest>& queue, StateBudget& budget, int room) {
  Admitted out;
  while (!queue.empty() && static_cast<int>(out.admitted.size()) < room) {
    ScheduledRequest& front = queue.Front();
    if (front.request->cancelled()) {
      out.refused.push_back({queue.Pop(), absl::CancelledError("cancelled by the client")});
      continue;
    }
    std::string why;
    const StateBudget::Admission verdict =
        budget.TryReserve(front.request->id(), front.request->params().max_positions(), &why);
    if (verdict == StateBudget::Admission::kWait) break;  // keeps its turn until state frees up
    if (verdict == StateBudget::Admission::kNever) {
      out.refused.push_back({queue.Pop(), absl::ResourceExhaustedError(why)});
      continue;
    }
    out.admitted.push_back(queue.Pop());
  }
  return out;
}

std::vector<Refusal> ExpireWaiting(FairQueue<ScheduledRequest>& queue, absl::Time now, absl::Duration timeout,
                                   const std::string& not_ready_reason) {
  std::vector<Refusal> refused;
  queue.RemoveIf(
      [&](const ScheduledRequest& s) { return s.request->cancelled() || now - s.queued_at > timeout; },
      [&](ScheduledRequest& s) {
        refused.push_back({s, s.request->cancelled() ? absl::CancelledError("cancelled by the client")
                                                     : absl::UnavailableError(not_ready_reason)});
      });
  return refused;
}

absl::Time NextExpiry(const FairQueue<ScheduledRequest>& queue, absl::Duration timeout) {
  absl::Time first = absl::InfiniteFuture();
  queue.ForEach([&](const ScheduledRequest& s) { first = std::min(first, s.queued_at + timeout); });
  return first;
}

}  // namespace mmx::coordinator
