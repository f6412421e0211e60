#include "coordinator/metrics_http.h"

#include <httplib.h>

#include <chrono>
#include <utility>

namespace mmx::coordinator {

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(const std::string& address,
                                                                             std::function<std::string()> render,
                                                                             std::function<bool()> healthy) {
  auto http = std::make_unique<httplib::Server>();
  http->new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  http->set_read_timeout(std::chrono::milliseconds(kReadTimeoutMs));
  http->set_write_timeout(std::chrono::seconds(5));
  http->set_keep_alive_timeout(5);
  http->set_payload_max_length(4096);  // GETs carry no body
  http->Get("/metrics", [render = std::move(render)](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http->Get("/healthz", [healthy = std::move(healthy)](const httplib::Request&, httplib::Response& res) {
    const bool ok = healthy();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "not ready\n", "text/plain");
  });
  http->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) res.set_content("try /metrics or /healthz\n", "text/plain");
  });
  auto server = std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer());
  absl::StatusOr<std::unique_ptr<HttpListener>> listener = HttpListener::Start(std::move(http), address, "--metrics-listen");
  if (!listener.ok()) return listener.status();
  server->listener_ = *std::move(listener);
  return server;
}

}  // namespace mmx::coordinator
