// The coordinator's side of the control plane: one Session stream per worker (control.proto).
// The stream's end is the worker's end: the cluster marks it lost at once, so a killed worker
// is noticed within a TCP reset; a silent one when its heartbeats stop (worker_session.h).
// With a join token, a session without it (gRPC metadata, proto/join_token.h) is refused
// before anything is read: PERMISSION_DENIED, logged with the peer's address.
#pragma once

#include <string>

#include "base/log.h"
#include "coordinator/cluster.h"
#include "mmx/v1/control.grpc.pb.h"

namespace mmx::coordinator {

class ControlService final : public v1::Control::Service {
 public:
  // `join_token` "" admits any worker (a trusted network, or mutual TLS doing the job).
  ControlService(Cluster* cluster, std::string join_token = "", LogSink log = StderrLog())
      : cluster_(cluster), join_token_(std::move(join_token)), log_(std::move(log)) {}

  grpc::Status Session(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) override;

 private:
  Cluster* cluster_;
  const std::string join_token_;
  LogSink log_;
};

}  // namespace mmx::coordinator
