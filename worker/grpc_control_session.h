// The worker's control session over gRPC to an mmx-coord process.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "proto/tls_credentials.h"
#include "worker/control_session.h"

namespace mmx::worker {

// Connects to the coordinator at `address` (HOST:PORT), retrying until `timeout` (workers may
// start before their coordinator; the first wait is logged once; InfiniteDuration: for ever), and opens the Session stream.
// Unavailable, saying what to check, if the coordinator cannot be reached in time.
// `tls`: verify the coordinator's certificate (and present the worker's) when set.
// `join_token` (when not "") goes with the session for a coordinator that requires one.
absl::StatusOr<std::unique_ptr<ControlSession>> ConnectControlSession(const std::string& address,
                                                                      const rpc::ClientTlsFiles& tls,
                                                                      const std::string& join_token,
                                                                      absl::Duration timeout, const LogSink& log);

}  // namespace mmx::worker
