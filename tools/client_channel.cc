#include "tools/client_channel.h"

#include <cstdlib>

#include "grpcpp/grpcpp.h"

namespace mmx::tools {

void AddConnectionOptions(CLI::App* command, ServerConnection* connection) {
  command->add_option("--server", connection->server, "Coordinator address HOST:PORT");
  command->add_option("--tls-ca", connection->tls.ca,
                      "Connect over TLS, verifying the coordinator's certificate against this PEM CA");
  command->add_option("--tls-cert", connection->tls.cert, "Present this PEM certificate (mutual TLS)");
  command->add_option("--tls-key", connection->tls.key, "The PEM private key of --tls-cert");
  command->add_option("--api-key", connection->api_key,
                      "The API key to send (default: the MMX_API_KEY environment variable)");
}

void Authorize(grpc::ClientContext* context, const ServerConnection& connection) {
  std::string key = connection.api_key;
  if (key.empty()) {
    if (const char* from_env = std::getenv("MMX_API_KEY")) key = from_env;
  }
  if (!key.empty()) context->AddMetadata("authorization", "Bearer " + key);
}

absl::StatusOr<std::unique_ptr<v1::Inference::Stub>> ConnectInference(const ServerConnection& connection) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = rpc::MakeChannelCredentials(connection.tls);
  if (!credentials.ok()) return credentials.status();
  return v1::Inference::NewStub(grpc::CreateChannel(connection.server, *credentials));
}

}  // namespace mmx::tools
