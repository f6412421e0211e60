#include "worker/step_inbox.h"

#include "transport/message_keys.h"

namespace mmx::worker {

absl::StatusOr<transport::Message> StepInbox::Next(absl::Duration timeout) {
  if (!kept_.empty()) {
    transport::Message m = std::move(kept_.front());
    kept_.pop_front();
    return m;
  }
  return transport_->ReceiveAny(transport::InboxKey(transport::MessageKind::kStep), timeout);
}

std::optional<transport::Message> StepInbox::PollFor(const std::function<bool(const transport::Message&)>& wanted) {
  for (auto it = kept_.begin(); it != kept_.end(); ++it) {
    if (!wanted(*it)) continue;
    transport::Message m = std::move(*it);
    kept_.erase(it);
    return m;
  }
  while (true) {
    absl::StatusOr<transport::Message> m =
        transport_->ReceiveAny(transport::InboxKey(transport::MessageKind::kStep), absl::ZeroDuration());
    if (!m.ok()) return std::nullopt;
    if (wanted(*m)) return *std::move(m);
    kept_.push_back(*std::move(m));
  }
}

}  // namespace mmx::worker
