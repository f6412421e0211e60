// The coordinator's side of one worker's control session (control.proto, Control.Session):
// Register -> Assignment, then progress, Ready, PeersApplied and failures into the Cluster,
// until the stream ends, which marks the worker lost at once (a killed worker is noticed within
// a TCP reset). Heartbeats both ways (session_watchdog.h): a worker silent for the cluster's
// heartbeat timeout has its session ended here, and is lost the same way. Over gRPC (coordinator/control_service.h) or in memory
// from a worker in the same process (engine/inproc_session.h).
#pragma once

#include "absl/status/status.h"
#include "coordinator/cluster.h"
#include "mmx/v1/control.pb.h"

namespace mmx::coordinator {

// The coordinator's end of a session stream. Read and Write are called from one thread each
// (Write is serialised by ServeWorkerSession).
class WorkerStream {
 public:
  virtual ~WorkerStream() = default;
  // Blocks until the worker's next message; false once the worker ended the session.
  virtual bool Read(v1::WorkerMessage* message) = 0;
  // False once the stream is gone.
  virtual bool Write(const v1::CoordinatorMessage& message) = 0;
  // Ends the stream from this side (a silent worker): a blocked Read returns false. Any thread.
  virtual void Cancel() = 0;
};

// Runs the session until the worker ends it or it is rejected. Returns OK, Cancelled (closed
// before Register), InvalidArgument (first message not Register) or the rejection's status
// (FailedPrecondition, InvalidArgument, AlreadyExists: the worker was told why).
absl::Status ServeWorkerSession(Cluster& cluster, WorkerStream& stream);

}  // namespace mmx::coordinator
