#include "coordinator/worker_session.h"

#include <memory>
#include <mutex>
#include <optional>

#include "coordinator/session_watchdog.h"

namespace mmx::coordinator {

absl::Status ServeWorkerSession(Cluster& cluster, WorkerStream& stream) {
  v1::WorkerMessage first;
  if (!stream.Read(&first)) return absl::CancelledError("session closed before Register");
  if (!first.has_register_()) return absl::InvalidArgumentError("the first message of a session must be Register");
  // One Write at a time: the cluster writes from other threads (peer tables). The writer may
  // outlive this call inside the cluster; `alive` keeps it off the stream afterwards.
  auto write_mu = std::make_shared<std::mutex>();
  auto alive = std::make_shared<bool>(true);
  SessionWriter writer = [&stream, write_mu, alive](const v1::CoordinatorMessage& m) {
    std::lock_guard<std::mutex> lock(*write_mu);
    return *alive && stream.Write(m);
  };
  auto reject = [&writer](const absl::Status& status) {
    v1::CoordinatorMessage m;
    m.mutable_rejected()->set_message(std::string(status.message()));
    writer(m);
    return status;
  };
  uint64_t session_id = 0;
  // An Assignment, or Standby (an Assignment may follow at any time, written by the cluster).
  // The cluster may end this session itself (the loser of a race for a lost entry).
  absl::StatusOr<v1::CoordinatorMessage> reply =
      cluster.Register(first.register_(), writer, &session_id, [&stream, write_mu, alive] {
        std::lock_guard<std::mutex> lock(*write_mu);
        if (*alive) stream.Cancel();
      });
  if (!reply.ok()) {
    (void)reject(reply.status());
    return absl::FailedPreconditionError(reply.status().message());
  }
  writer(*reply);

  std::optional<SessionWatchdog> watchdog;
  watchdog.emplace(HeartbeatInterval(cluster.heartbeat_timeout()), cluster.heartbeat_timeout(), writer,
                   [&cluster, &stream, session_id](absl::Duration silence) {
                     cluster.OnSilent(session_id, silence);
                     stream.Cancel();
                   });
  v1::WorkerMessage msg;
  absl::Status result;
  while (stream.Read(&msg)) {
    watchdog->Heard();
    if (msg.has_progress()) {
      cluster.OnProgress(session_id, msg.progress().bytes_done(), msg.progress().bytes_total());
    } else if (msg.has_ready()) {
      absl::Status st = cluster.OnReady(session_id, msg.ready());
      if (!st.ok()) {
        result = reject(absl::FailedPreconditionError(st.message()));
        break;
      }
    } else if (msg.has_peers_applied()) {
      cluster.OnPeersApplied(session_id, msg.peers_applied().version());
    } else if (msg.has_leaving()) {
      cluster.OnLeaving(session_id);
    } else if (msg.has_failed()) {
      cluster.OnFailed(session_id, msg.failed().message());
    }
  }
  watchdog.reset();
  {
    std::lock_guard<std::mutex> lock(*write_mu);
    *alive = false;  // the stream may die with this call
  }
  cluster.OnSessionEnded(session_id);
  return result;
}

}  // namespace mmx::coordinator
