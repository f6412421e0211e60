// A minimal HTTP/1.1 server for Prometheus scrapes: GET /metrics answers the text exposition
// format, GET /healthz "ok" or 503 while the cluster is not ready; anything else 404. One
// thread, one request per connection (scrapers open a connection per scrape).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace mmx::coordinator {

class MetricsHttpServer {
 public:
  // Listens on HOST:PORT (port 0: any free port; see port()).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                   std::function<std::string()> render,
                                                                   std::function<bool()> healthy);
  ~MetricsHttpServer();
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  void Serve();
  void Handle(int fd);

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: tells Serve() to stop
  int port_ = 0;
  std::function<std::string()> render_;
  std::function<bool()> healthy_;
  std::thread thread_;
};

}  // namespace mmx::coordinator
