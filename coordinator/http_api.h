// The OpenAI-compatible HTTP API, `mmx-coord serve --http-listen HOST:PORT`, beside the gRPC
// API and sharing its scheduler (requests of both kinds batch together), keys and limits:
//
//   POST /v1/chat/completions   messages -> the assistant's reply (streamed with "stream": true)
//   POST /v1/completions        prompt (text or token ids) -> its continuation
//   GET  /v1/models[/ID]        the served model (--served-model-name)
//   GET  /health                200 when the cluster can serve, else 503
//   GET  /metrics               Prometheus text, as --metrics-listen serves it
//
// Bodies and errors are OpenAI's (openai_requests.h, openai_responses.h); `Authorization: Bearer
// KEY` carries the API key when --api-keys is on. On cpp-httplib with a fixed pool of threads:
// every open completion holds one, so the pool is sized to the scheduler's capacity plus spares
// for /health and /metrics; requests beyond the queue get 429 at once.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/http_client_watch.h"
#include "coordinator/http_listener.h"
#include "coordinator/serving_parts.h"
#include "proto/tls_credentials.h"

namespace httplib {
struct Request;
struct Response;
}

namespace mmx::coordinator {

class HttpApiServer {
 public:
  struct Options {
    std::string listen;                  // HOST:PORT (port 0: any free port)
    std::string served_model;            // what /v1/models lists and a request's "model" must name
    int threads = 64;                    // requests handled at once
    rpc::ServerTlsFiles tls;             // HTTPS when set; client certificates required with client_ca
    std::function<std::string()> render_metrics;  // GET /metrics (null: 404)
  };
  static absl::StatusOr<std::unique_ptr<HttpApiServer>> Start(Options options, ServingParts parts);
  // Ends the open completions (their requests are cancelled), then stops.
  ~HttpApiServer();
  int port() const { return listener_->port(); }

 private:
  HttpApiServer(Options options, ServingParts parts);
  void Routes(httplib::Server& http);
  void Complete(bool chat, const httplib::Request& req, httplib::Response& res);
  void Models(const httplib::Request& req, httplib::Response& res, const std::string& id);
  // The caller, or fills `res` with 401 and returns nothing.
  std::optional<Caller> Authorize(const httplib::Request& req, httplib::Response& res);

  const Options o_;
  const ServingParts parts_;
  const int64_t started_unix_s_;  // the models' "created"
  StopSignal stop_;                         // raised first when stopping: open completions end
  std::unique_ptr<HttpListener> listener_;  // destroyed before stop_
};

}  // namespace mmx::coordinator
