#include "worker/step_inbox.h"

#include "transport/message_keys.h"

namespace mmx::worker {

absl::StatusOr<transport::Message> StepInbox::Next(absl::Duration timeout) {
  if (!put_back_.empty()) {
    transport::Message m = std::move(put_back_.front());
    put_back_.pop_front();
    return m;
  }
  return transport_->ReceiveAny(transport::InboxKey(transport::MessageKind::kStep), timeout);
}

std::optional<transport::Message> StepInbox::Poll() {
  absl::StatusOr<transport::Message> m = Next(absl::ZeroDuration());
  if (!m.ok()) return std::nullopt;
  return *std::move(m);
}

}  // namespace mmx::worker
