// ControlSession: the worker's end of its control session with the coordinator (control.proto,
// Control.Session): a stream of WorkerMessages up and CoordinatorMessages down, whose end tells
// each side that the other is gone. Over gRPC to a coordinator process
// (worker/grpc_control_session.h), or in memory to a coordinator in the same process
// (engine/inproc_session.h).
#pragma once

#include "absl/status/status.h"
#include "mmx/v1/control.pb.h"

namespace mmx::worker {

class ControlSession {
 public:
  virtual ~ControlSession() = default;

  // Queues a message to the coordinator. Thread-safe. False once the session is over.
  virtual bool Write(const v1::WorkerMessage& message) = 0;
  // Blocks until the coordinator's next message. False once the session is over (the
  // coordinator ended it, or Close was called); Finish then says how it ended.
  virtual bool Read(v1::CoordinatorMessage* message) = 0;
  // Ends the session from the worker's side: a blocked Read returns false. Thread-safe.
  virtual void Close() = 0;
  // After Read returned false: the status the coordinator ended the session with.
  virtual absl::Status Finish() = 0;
};

}  // namespace mmx::worker
