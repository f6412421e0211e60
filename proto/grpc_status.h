// absl::Status <-> grpc::Status for mmx's services and clients (the codes are the same numbers).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"

namespace mmx {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// A client call's status; an unreachable server says which address it tried.
inline absl::Status FromGrpcStatus(const grpc::Status& s, const std::string& server) {
  if (s.ok()) return absl::OkStatus();
  std::string message = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && message.find("connect") != std::string::npos) {
    message = absl::StrCat("cannot reach the server at ", server, " (", message, ")");
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), message);
}

}  // namespace mmx
