// The metrics and health endpoint: GET /metrics answers Prometheus's text exposition format,
// GET /healthz "ok" or 503 while the cluster is not ready; anything else 404. No secret is in
// either: the metrics name workers, requests and timings, never keys, tokens or request text.
//
// cpp-httplib underneath, with a pool of threads, so a slow or silent client holds one thread
// for at most the read timeout while scrapes go on in the others; a malformed request gets 400.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/http_listener.h"

namespace mmx::coordinator {

class MetricsHttpServer {
 public:
  // Connections served at once; more wait for a free thread.
  static constexpr int kThreads = 8;
  // How long a connection may take to send its request (or its next one, kept alive).
  static constexpr int kReadTimeoutMs = 1000;

  // Listens on HOST:PORT (port 0: any free port; see port()). HOST may be an IPv6 address in
  // brackets.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                   std::function<std::string()> render,
                                                                   std::function<bool()> healthy);
  int port() const { return listener_->port(); }

 private:
  MetricsHttpServer() = default;
  std::unique_ptr<HttpListener> listener_;
};

}  // namespace mmx::coordinator
