// The mmx client's connection to a coordinator: `--server HOST:PORT` and the TLS options
// (`--tls-ca`, and `--tls-cert`/`--tls-key` for mutual TLS), shared by every client command.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "mmx/v1/inference.grpc.pb.h"
#include "proto/tls_credentials.h"

namespace mmx::tools {

struct ServerConnection {
  std::string server = "127.0.0.1:7070";
  rpc::ClientTlsFiles tls;
  std::string api_key;  // --api-key, else the MMX_API_KEY environment variable ("" = none)
};

// Adds --server, --tls-ca, --tls-cert, --tls-key and --api-key to `command`.
void AddConnectionOptions(CLI::App* command, ServerConnection* connection);

// Puts the API key (if any) into a call's metadata: `authorization: Bearer KEY`.
void Authorize(grpc::ClientContext* context, const ServerConnection& connection);

// A stub on a channel to the server (TLS when any TLS file is given). InvalidArgument or
// NotFound naming the flag when a TLS file is missing or not PEM.
absl::StatusOr<std::unique_ptr<v1::Inference::Stub>> ConnectInference(const ServerConnection& connection);

}  // namespace mmx::tools
