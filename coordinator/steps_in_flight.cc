#include "coordinator/steps_in_flight.h"

#include "absl/strings/str_cat.h"

namespace mmx::coordinator {

absl::Status StepsInFlight::Launch(Step step, transport::PeerId head) {
  for (auto& members : step.members) {
    for (auto& r : members) r->in_flight = true;
  }
  step.replies.assign(step.sent.size(), std::nullopt);
  step.replied = 0;
  step.sent_at = absl::Now();
  const uint64_t id = step.step_id;
  Step& held = steps_[id] = std::move(step);
  held.out_at_send = steps_.size();
  return client_.Send(head, held.sent);
}

absl::StatusOr<std::optional<StepsInFlight::Step>> StepsInFlight::Receive(absl::Time deadline, std::stop_token stop) {
  absl::StatusOr<transport::Message> reply = client_.NextReply(deadline, stop);
  if (absl::IsDeadlineExceeded(reply.status())) return std::nullopt;
  if (absl::IsCancelled(reply.status()) && stop.stop_requested()) return std::nullopt;
  if (!reply.ok()) return absl::UnavailableError(absl::StrCat("the data plane: ", reply.status().message()));
  const std::optional<ReplyId> id = PeekReply(*reply);
  if (!id) return std::nullopt;  // no step to give it to; that step's timeout covers it
  auto it = steps_.find(id->step_id);
  if (it == steps_.end() || id->micro_batch >= it->second.sent.size() || it->second.replies[id->micro_batch]) {
    return std::nullopt;
  }
  Step& step = it->second;
  absl::StatusOr<MicroBatchResult> result = DecodeReply(*reply, step.sent[id->micro_batch].header, client_.limits());
  if (absl::IsUnavailable(result.status()) || absl::IsDeadlineExceeded(result.status())) return result.status();
  step.replies[id->micro_batch] = std::move(result);
  if (++step.replied < step.sent.size()) return std::nullopt;
  Step done = std::move(step);
  steps_.erase(it);
  for (auto& members : done.members) {
    for (auto& r : members) r->in_flight = false;
  }
  return done;
}

void StepsInFlight::VoidAll() {
  for (auto& [id, step] : steps_) {
    for (auto& members : step.members) {
      for (auto& r : members) r->in_flight = false;
    }
  }
  steps_.clear();
}

bool StepsInFlight::busy(int wave) const {
  for (const auto& [id, step] : steps_) {
    if (step.wave == wave) return true;
  }
  return false;
}

uint64_t StepsInFlight::oldest_step() const { return steps_.empty() ? 0 : steps_.begin()->first; }

absl::Time StepsInFlight::oldest_sent() const {
  return steps_.empty() ? absl::InfiniteFuture() : steps_.begin()->second.sent_at;
}

}  // namespace mmx::coordinator
