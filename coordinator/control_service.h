// The coordinator's side of the control plane: one Session stream per worker (control.proto).
// The stream's end is the worker's end: the cluster marks it lost at once, so a killed worker
// is noticed within a TCP reset; a silent one when its heartbeats stop (worker_session.h).
#pragma once

#include "coordinator/cluster.h"
#include "mmx/v1/control.grpc.pb.h"

namespace mmx::coordinator {

class ControlService final : public v1::Control::Service {
 public:
  explicit ControlService(Cluster* cluster) : cluster_(cluster) {}

  grpc::Status Session(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) override;

 private:
  Cluster* cluster_;
};

}  // namespace mmx::coordinator
