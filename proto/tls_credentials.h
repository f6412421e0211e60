// gRPC credentials from PEM files, for every gRPC channel mmx opens or serves: the coordinator's
// server (client API and worker control plane), and the workers' and clients' channels to it.
// Empty file names mean plain text. Errors name the flag and the file (NotFound, or
// InvalidArgument for a half-given pair).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace mmx::rpc {

// `mmx-coord serve --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]`.
struct ServerTlsFiles {
  std::string cert;       // PEM certificate chain
  std::string key;        // PEM private key
  std::string client_ca;  // require and verify client certificates signed by this CA ("" = none)
  bool enabled() const { return !cert.empty() || !key.empty() || !client_ca.empty(); }
};
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTlsFiles& files);

// `--tls-ca FILE [--tls-cert FILE --tls-key FILE]` of mmx-worker and the mmx client.
struct ClientTlsFiles {
  std::string ca;    // verify the server against this CA (the system's roots when "" but TLS is on)
  std::string cert;  // present this certificate (mutual TLS)
  std::string key;
  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientTlsFiles& files);

// Whether `listen` (HOST:PORT) is reachable only from this machine: 127.0.0.0/8, ::1, localhost.
bool IsLoopbackAddress(const std::string& listen);

// Where the metrics and health endpoint listens by default, next to the gRPC `listen` address:
// port + 1 (0 stays 0: any), on `listen`'s host when that is loopback, else on 127.0.0.1. It is
// reachable from other machines only when `--metrics-listen` says so.
std::string DefaultMetricsAddress(const std::string& listen);

}  // namespace mmx::rpc
