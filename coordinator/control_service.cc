#include "coordinator/control_service.h"

#include <memory>
#include <mutex>

namespace mmx::coordinator {

grpc::Status ControlService::Session(grpc::ServerContext* context,
                                     grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) {
  v1::WorkerMessage first;
  if (!stream->Read(&first)) return grpc::Status(grpc::StatusCode::CANCELLED, "session closed before Register");
  if (!first.has_register_()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message of a session must be Register");
  }
  // gRPC allows one Write at a time: the cluster writes from other threads (peer tables).
  auto write_mu = std::make_shared<std::mutex>();
  auto alive = std::make_shared<bool>(true);
  SessionWriter writer = [stream, write_mu, alive](const v1::CoordinatorMessage& m) {
    std::lock_guard<std::mutex> lock(*write_mu);
    return *alive && stream->Write(m);
  };
  uint64_t session_id = 0;
  absl::StatusOr<v1::Assignment> assignment = cluster_->Register(first.register_(), writer, &session_id);
  if (!assignment.ok()) {
    v1::CoordinatorMessage reject;
    reject.mutable_rejected()->set_message(std::string(assignment.status().message()));
    writer(reject);
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(assignment.status().message()));
  }
  v1::CoordinatorMessage assign;
  *assign.mutable_assignment() = *assignment;
  writer(assign);

  v1::WorkerMessage msg;
  grpc::Status result = grpc::Status::OK;
  while (stream->Read(&msg)) {
    if (msg.has_progress()) {
      cluster_->OnProgress(session_id, msg.progress().bytes_done(), msg.progress().bytes_total());
    } else if (msg.has_ready()) {
      absl::Status st = cluster_->OnReady(session_id, msg.ready());
      if (!st.ok()) {
        v1::CoordinatorMessage reject;
        reject.mutable_rejected()->set_message(std::string(st.message()));
        writer(reject);
        result = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(st.message()));
        break;
      }
    } else if (msg.has_peers_applied()) {
      cluster_->OnPeersApplied(session_id, msg.peers_applied().version());
    } else if (msg.has_failed()) {
      cluster_->OnFailed(session_id, msg.failed().message());
    }
  }
  {
    std::lock_guard<std::mutex> lock(*write_mu);
    *alive = false;  // the stream object dies with this call
  }
  cluster_->OnSessionEnded(session_id);
  (void)context;
  return result;
}

}  // namespace mmx::coordinator
