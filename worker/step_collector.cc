#include "worker/step_collector.h"

#include "mmx/v1/wire.pb.h"
#include "transport/message_keys.h"

namespace mmx::worker {

using transport::InboxKey;
using transport::MessageKind;
using transport::ReplyKey;
namespace {

struct GroupId {
  uint64_t step = 0;
  int layer = 0;
  uint32_t expected = 1;
};

// The (step, layer) a message belongs to and how many micro-batches its step has. A header that
// does not parse forms a group of its own (the executor reports it).
GroupId IdOf(const transport::Message& m) {
  v1::StepHeader h;
  GroupId id;
  if (!h.ParseFromString(m.header)) return id;
  id.step = h.step_id();
  id.layer = h.layer();
  id.expected = h.num_micro_batches() == 0 ? 1 : std::min<uint32_t>(h.num_micro_batches(), 64);
  return id;
}

}  // namespace

absl::StatusOr<transport::Message> StepCollector::Pop(absl::Duration timeout) {
  if (!stash_.empty()) {
    transport::Message m = std::move(stash_.front());
    stash_.pop_front();
    return m;
  }
  return transport_->ReceiveAny(InboxKey(MessageKind::kStep), timeout);
}

absl::StatusOr<std::vector<transport::Message>> StepCollector::Next(absl::Duration timeout) {
  absl::StatusOr<transport::Message> first = Pop(timeout);
  if (!first.ok()) return first.status();
  const GroupId id = IdOf(*first);
  std::vector<transport::Message> group;
  group.push_back(*std::move(first));
  // Siblings already stashed first, then fresh arrivals until the group is complete.
  for (auto it = stash_.begin(); it != stash_.end() && group.size() < id.expected;) {
    const GroupId other = IdOf(*it);
    if (other.step == id.step && other.layer == id.layer) {
      group.push_back(std::move(*it));
      it = stash_.erase(it);
    } else {
      ++it;
    }
  }
  const absl::Time deadline = absl::Now() + wait_for_rest_;
  while (group.size() < id.expected) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    absl::StatusOr<transport::Message> m = transport_->ReceiveAny(InboxKey(MessageKind::kStep), left);
    if (!m.ok()) break;
    const GroupId other = IdOf(*m);
    if (other.step == id.step && other.layer == id.layer) {
      group.push_back(*std::move(m));
    } else {
      stash_.push_back(*std::move(m));
    }
  }
  return group;
}

}  // namespace mmx::worker
