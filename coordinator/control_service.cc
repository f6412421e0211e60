#include "coordinator/control_service.h"

#include "proto/grpc_status.h"
#include "coordinator/worker_session.h"

namespace mmx::coordinator {
namespace {

class GrpcWorkerStream final : public WorkerStream {
 public:
  GrpcWorkerStream(grpc::ServerContext* context,
                   grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream)
      : context_(context), stream_(stream) {}
  bool Read(v1::WorkerMessage* message) override { return stream_->Read(message); }
  bool Write(const v1::CoordinatorMessage& message) override { return stream_->Write(message); }
  void Cancel() override { context_->TryCancel(); }

 private:
  grpc::ServerContext* context_;
  grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream_;
};

}  // namespace

grpc::Status ControlService::Session(grpc::ServerContext* context,
                                     grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) {
  GrpcWorkerStream adapter(context, stream);
  return ToGrpcStatus(ServeWorkerSession(*cluster_, adapter));
}

}  // namespace mmx::coordinator
