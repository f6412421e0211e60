// WaitingRoom: the requests the scheduler has accepted but not yet admitted, in two fair queues:
// interactive requests (Generate callers) and batch jobs' requests, each queue round-robin over
// its sources (coordinator/fair_queue.h). Admission serves the interactive queue first
// (coordinator/admission.h), so a job of any size waits behind a person, not the other way round.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "coordinator/fair_queue.h"
#include "coordinator/request.h"

namespace mmx::coordinator {

// A request in the scheduler's hands, waiting or running.
struct ScheduledRequest {
  std::shared_ptr<Request> request;
  absl::Time queued_at;
};

class WaitingRoom {
 public:
  void Push(ScheduledRequest item) {
    const std::string source = item.request->params().source;
    QueueOf(item).Push(source, std::move(item));
  }
  // A job request taken out of the running batch for an interactive one: first of its job again.
  void PushFront(ScheduledRequest item) {
    const std::string source = item.request->params().source;
    QueueOf(item).PushFront(source, std::move(item));
  }
  FairQueue<ScheduledRequest>& interactive() { return interactive_; }
  FairQueue<ScheduledRequest>& jobs() { return jobs_; }
  bool empty() const { return interactive_.empty() && jobs_.empty(); }
  size_t size() const { return interactive_.size() + jobs_.size(); }
  void ForEach(const std::function<void(const ScheduledRequest&)>& visit) const {
    interactive_.ForEach(visit);
    jobs_.ForEach(visit);
  }
  void RemoveIf(const std::function<bool(const ScheduledRequest&)>& drop,
                const std::function<void(ScheduledRequest&)>& removed) {
    interactive_.RemoveIf(drop, removed);
    jobs_.RemoveIf(drop, removed);
  }

 private:
  FairQueue<ScheduledRequest>& QueueOf(const ScheduledRequest& item) {
    return item.request->params().interactive() ? interactive_ : jobs_;
  }
  FairQueue<ScheduledRequest> interactive_;
  FairQueue<ScheduledRequest> jobs_;
};

}  // namespace mmx::coordinator
