#include "worker/grpc_control_session.h"

#include <chrono>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "mmx/v1/control.grpc.pb.h"
#include "proto/join_token.h"

namespace mmx::worker {
namespace {

class GrpcControlSession final : public ControlSession {
 public:
  GrpcControlSession(std::shared_ptr<grpc::Channel> channel, const std::string& join_token)
      : channel_(std::move(channel)), stub_(v1::Control::NewStub(channel_)) {
    if (!join_token.empty()) context_.AddMetadata(rpc::kJoinTokenMetadata, join_token);
    stream_ = stub_->Session(&context_);
  }
  ~GrpcControlSession() override { context_.TryCancel(); }

  bool Write(const v1::WorkerMessage& message) override {
    std::lock_guard<std::mutex> lock(write_mu_);
    return stream_->Write(message);
  }
  bool Read(v1::CoordinatorMessage* message) override { return stream_->Read(message); }
  void Close() override { context_.TryCancel(); }
  absl::Status Finish() override {
    const grpc::Status st = stream_->Finish();
    if (st.ok()) return absl::OkStatus();
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Control::Stub> stub_;
  grpc::ClientContext context_;
  std::mutex write_mu_;  // gRPC allows one Write at a time; the worker writes from several threads
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>> stream_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ControlSession>> ConnectControlSession(const std::string& address,
                                                                      const rpc::ClientTlsFiles& tls,
                                                                      const std::string& join_token,
                                                                      absl::Duration timeout, const LogSink& log) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = rpc::MakeChannelCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  // Short reconnect backoff: a worker started before its coordinator should join within a
  // fraction of a second of it coming up, not after gRPC's default backoff of seconds.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(address, *credentials, args);
  const absl::Time give_up = absl::Now() + timeout;  // InfiniteDuration: never
  bool said_waiting = false;
  while (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(1))) {
    if (!said_waiting) {
      log(absl::StrCat("waiting for the coordinator at ", address));
      said_waiting = true;
    }
    if (absl::Now() > give_up) {
      return absl::UnavailableError(absl::StrCat(
          "cannot reach the coordinator at ", address, " after ", absl::FormatDuration(timeout),
          "; is mmx-coord serve running there?",
          tls.enabled() ? " (or the TLS handshake fails: does --tls-ca sign its certificate, for this host name?)"
                        : " (if it serves TLS, give --tls-ca)"));
    }
  }
  return std::unique_ptr<ControlSession>(new GrpcControlSession(std::move(channel), join_token));
}

}  // namespace mmx::worker
