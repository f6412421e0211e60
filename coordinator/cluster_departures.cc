// The Cluster's side of workers going away on purpose or by silence: heartbeats that stopped,
// SIGTERM (leaving, with or without a hand-over to a standby), and a sequence reset after a step
// failed with no worker lost. Losses of the session itself are in cluster.cc.
#include "absl/strings/str_cat.h"
#include "coordinator/cluster.h"

namespace mmx::coordinator {

void Cluster::OnSilent(uint64_t session_id, absl::Duration silence) {
  absl::MutexLock lock(&mu_);
  if (Slot* s = FindSession(session_id)) {
    s->end_reason = absl::StrCat("no heartbeat for ", absl::FormatDuration(absl::Trunc(silence, absl::Milliseconds(100))),
                                 " (frozen, or its link is down; --heartbeat-timeout)");
  }
}

void Cluster::OnLeaving(uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  Slot* s = FindSession(session_id);
  if (s == nullptr || s->leaving || s->dismissed) return;
  s->end_reason = "stopped (SIGTERM); start it again, or keep a standby to take over";
  if (s->handover) return;  // already handing over
  const plan::WorkerShard& e = *s->entry;
  if (ready_ && e.experts_only() && ExpertsHeldElsewhere(*s)) {
    // Its experts are held elsewhere: it may go now, the stages route around it (the step in
    // flight included).
    log_(absl::StrCat("worker '", e.name, "' is stopping (SIGTERM); its experts are held elsewhere"));
    v1::CoordinatorMessage msg;
    msg.mutable_dismissed()->set_message("your experts are held elsewhere; you may stop");
    s->writer(msg);
    s->dismissed = true;
    return;
  }
  if (StartHandover(*s)) return;  // it serves on while the standby loads
  s->leaving = true;
  log_(absl::StrCat("worker '", e.name, "' is stopping (SIGTERM): no new step starts until it is back"));
  UpdateReady();
}

void Cluster::Quiescent() {
  absl::MutexLock lock(&mu_);
  for (Slot& s : slots_) {
    if (!s.leaving || s.dismissed || !s.writer) continue;
    v1::CoordinatorMessage msg;
    msg.mutable_dismissed()->set_message("no step in flight; you may stop");
    s.writer(msg);
    s.dismissed = true;
  }
}

void Cluster::ResetSequences(const std::string& why) {
  absl::MutexLock lock(&mu_);
  last_loss_ = why;
  log_(absl::StrCat("resetting every sequence (a new peer table): ", why));
  StartNewEpoch();
}

void Cluster::StartNewEpoch() {
  ++epoch_;
  published_ = false;
  ready_ = false;
  NotifyChange();
  MaybePublishPeers();
  UpdateReady();
}

}  // namespace mmx::coordinator
