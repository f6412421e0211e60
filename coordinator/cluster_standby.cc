// The Cluster's standby pool: workers registered with --standby (or replaced while they were
// gone) wait here, holding nothing, until an entry is lost that they can take.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/cluster.h"
#include "coordinator/session_watchdog.h"
#include "plan/shard_bytes.h"

namespace mmx::coordinator {

absl::StatusOr<v1::CoordinatorMessage> Cluster::RegisterStandby(const v1::Register& request, SessionWriter writer,
                                                                uint64_t* session_id) {
  for (const StandbyWorker& s : standbys_) {
    if (s.info.name() == request.name()) {
      return absl::AlreadyExistsError(absl::StrCat("a standby named '", request.name(),
                                                   "' is already registered; give each worker its own name"));
    }
  }
  for (const Slot& s : slots_) {
    if (s.session_id != 0 && s.info.name() == request.name() && s.entry->name != request.name()) {
      return absl::AlreadyExistsError(absl::StrCat("worker name '", request.name(), "' is held by a live worker"));
    }
  }
  *session_id = next_session_++;
  standbys_.push_back({*session_id, writer, request});
  log_(absl::StrFormat("standby '%s' registered (device %s, %.1f GiB)", request.name(), request.device(),
                       request.memory_bytes() / double(1 << 30)));
  // A lost entry waiting for a worker takes it at once.
  for (Slot& slot : slots_) {
    if (slot.session_id != 0 || (slot.state != v1::WORKER_STATE_LOST && slot.state != v1::WORKER_STATE_FAILED)) continue;
    if (slot.handover || !Fits(request, slot)) continue;
    standbys_.pop_back();
    Claim(slot, *session_id, std::move(writer), request);
    log_(absl::StrCat("standby '", request.name(), "' takes the entry of lost worker '", slot.entry->name, "'"));
    v1::CoordinatorMessage reply;
    *reply.mutable_assignment() = MakeAssignment(slot);
    return reply;
  }
  v1::CoordinatorMessage reply;
  reply.mutable_standby()->set_heartbeat_interval_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(HeartbeatInterval(heartbeat_timeout_))));
  reply.mutable_standby()->set_heartbeat_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(heartbeat_timeout_)));
  return reply;
}

bool Cluster::Fits(const v1::Register& standby, const Slot& slot) const {
  if (absl::StartsWith(standby.device(), "cuda") != absl::StartsWith(slot.entry->device, "cuda")) return false;
  const int64_t weights = plan::ShardWeightBytes(sizes_, *slot.entry, shard_.expert_dtype == "int8");
  auto reserved = reserved_state_.find(slot.entry->name);
  const int64_t state = reserved == reserved_state_.end() ? 0 : reserved->second;
  return standby.memory_bytes() >= weights + state;
}

void Cluster::AssignStandbys() {
  for (Slot& slot : slots_) {
    if (slot.session_id != 0 || (slot.state != v1::WORKER_STATE_LOST && slot.state != v1::WORKER_STATE_FAILED)) continue;
    if (slot.handover) continue;  // a standby is loading it already
    auto standby = std::find_if(standbys_.begin(), standbys_.end(),
                                [&](const StandbyWorker& s) { return Fits(s.info, slot); });
    if (standby == standbys_.end()) continue;
    StandbyWorker taker = std::move(*standby);
    standbys_.erase(standby);
    Claim(slot, taker.session_id, taker.writer, taker.info);
    log_(absl::StrCat("standby '", taker.info.name(), "' takes the entry of lost worker '", slot.entry->name, "'"));
    v1::CoordinatorMessage msg;
    *msg.mutable_assignment() = MakeAssignment(slot);
    slot.writer(msg);
  }
}

bool Cluster::DropStandby(uint64_t session_id) {
  auto it = std::find_if(standbys_.begin(), standbys_.end(),
                         [&](const StandbyWorker& s) { return s.session_id == session_id; });
  if (it == standbys_.end()) return false;
  log_(absl::StrCat("standby '", it->info.name(), "' left"));
  standbys_.erase(it);
  return true;
}

bool Cluster::StartHandover(Slot& slot) {
  auto standby = std::find_if(standbys_.begin(), standbys_.end(), [&](const StandbyWorker& s) { return Fits(s.info, slot); });
  if (standby == standbys_.end()) return false;
  Slot::Handover h;
  h.session_id = standby->session_id;
  h.writer = standby->writer;
  h.info = standby->info;
  standbys_.erase(standby);
  log_(absl::StrCat("worker '", slot.entry->name, "' is stopping (SIGTERM); standby '", h.info.name(),
                    "' loads its entry first, then takes over"));
  v1::CoordinatorMessage msg;
  *msg.mutable_assignment() = MakeAssignment(slot);  // the same peer id: the new table maps it to the new address
  h.writer(msg);
  slot.handover = std::move(h);
  return true;
}

Cluster::Slot* Cluster::FindHandover(uint64_t session_id) {
  for (Slot& s : slots_) {
    if (s.handover && s.handover->session_id == session_id) return &s;
  }
  return nullptr;
}

absl::Status Cluster::CompleteHandover(Slot& slot, const v1::Ready& ready) {
  if (slot.handover->race) {
    // The restarted worker is ready before the standby loading its entry: it takes the entry
    // (its sequences were lost already); the standby goes back to standing by.
    if (absl::Status same = SameCheckpoint(ready); !same.ok()) {
      CloseSession(slot.handover->session_id);
      slot.handover.reset();
      return same;
    }
    log_(absl::StrCat("worker '", slot.handover->info.name(), "' is ready before standby '", slot.info.name(),
                      "': it takes its entry back"));
    CloseSession(slot.session_id);
    ClaimFromHandover(slot, ready);
    published_ = false;
    MaybePublishPeers();
    return absl::OkStatus();
  }
  if (absl::Status same = SameCheckpoint(ready); !same.ok()) {
    log_(absl::StrCat("standby '", slot.handover->info.name(), "' has another checkpoint (", same.message(),
                      "); worker '", slot.entry->name, "' stops without a hand-over"));
    slot.handover.reset();
    slot.leaving = true;
    UpdateReady();
    return same;
  }
  if (slot.writer) {
    v1::CoordinatorMessage msg;
    msg.mutable_dismissed()->set_message(absl::StrCat("standby '", slot.handover->info.name(), "' took over your entry"));
    slot.writer(msg);
  }
  ClaimFromHandover(slot, ready);
  last_loss_ = absl::StrCat("worker '", slot.entry->name, "' stopped (SIGTERM); standby '", slot.info.name(),
                            "' took over its entry");
  log_(last_loss_);
  StartNewEpoch();  // its sequences went with the old worker: replayed on the standby
  return absl::OkStatus();
}

void Cluster::ClaimFromHandover(Slot& slot, const v1::Ready& ready) {
  Slot::Handover h = *std::move(slot.handover);
  slot.handover.reset();
  Claim(slot, h.session_id, std::move(h.writer), h.info);
  slot.data_address = ready.data_address();
  slot.state_memory_bytes = ready.state_memory_bytes();
  slot.state = v1::WORKER_STATE_READY;
}

void Cluster::CloseSession(uint64_t session_id) {
  auto it = closers_.find(session_id);
  if (it == closers_.end()) return;
  std::function<void()> close = std::move(it->second);
  closers_.erase(it);
  close();
}

void Cluster::SetReservedState(std::map<std::string, int64_t> bytes) {
  absl::MutexLock lock(&mu_);
  reserved_state_ = std::move(bytes);
}

}  // namespace mmx::coordinator
