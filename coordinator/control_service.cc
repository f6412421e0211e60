#include "coordinator/control_service.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "coordinator/worker_session.h"
#include "proto/grpc_status.h"
#include "proto/join_token.h"

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
  if (!join_token_.empty()) {
    const auto& metadata = context->client_metadata();
    const auto it = metadata.find(rpc::kJoinTokenMetadata);
    const bool given = it != metadata.end();
    if (!given || !rpc::ConstantTimeEquals(std::string_view(it->second.data(), it->second.size()), join_token_)) {
      log_(absl::StrCat("refused a worker session from ", context->peer(), ": ",
                        given ? "wrong join token" : "no join token"));
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          given ? "the join token is wrong: give --join-token-file with the coordinator's token"
                                : "this coordinator needs a join token: give --join-token-file");
    }
  }
  GrpcWorkerStream adapter(context, stream);
  return ToGrpcStatus(ServeWorkerSession(*cluster_, adapter));
}

}  // namespace mmx::coordinator
