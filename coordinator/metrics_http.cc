#include "coordinator/metrics_http.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mmx::coordinator {

MetricsHttpServer::MetricsHttpServer() : server_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(const std::string& address,
                                                                             std::function<std::string()> render,
                                                                             std::function<bool()> healthy) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics-listen '", address, "' is not HOST:PORT"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";

  auto server = std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer());
  httplib::Server& http = *server->server_;
  http.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  http.set_read_timeout(std::chrono::milliseconds(kReadTimeoutMs));
  http.set_write_timeout(std::chrono::seconds(5));
  http.set_keep_alive_timeout(5);
  http.set_payload_max_length(4096);  // GETs carry no body
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, which lets another process bind
  // the same port and take some of the connections.
  http.set_socket_options([](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.Get("/metrics", [render = std::move(render)](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/healthz", [healthy = std::move(healthy)](const httplib::Request&, httplib::Response& res) {
    const bool ok = healthy();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "not ready\n", "text/plain");
  });
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) res.set_content("try /metrics or /healthz\n", "text/plain");
  });
  errno = 0;
  const bool bound = port == 0 ? (server->port_ = http.bind_to_any_port(host)) > 0
                               : http.bind_to_port(host, port) && (server->port_ = port) > 0;
  if (!bound) {
    return absl::UnavailableError(absl::StrCat("cannot listen for metrics on ", address,
                                               errno != 0 ? absl::StrCat(": ", std::strerror(errno)) : ""));
  }
  server->thread_ = std::thread([&http, &done = server->listen_returned_] {
    http.listen_after_bind();
    done = true;
  });
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  // stop() does nothing until the listening loop runs, and the loop would then run forever:
  // wait for it to start (it starts at once; it may also have ended, on a socket error).
  while (thread_.joinable() && !server_->is_running() && !listen_returned_) std::this_thread::yield();
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mmx::coordinator
