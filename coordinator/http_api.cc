#include "coordinator/http_api.h"

#include <httplib.h>

#include <chrono>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "coordinator/generate_admission.h"
#include "coordinator/http_completion.h"
#include "coordinator/openai_requests.h"
#include "coordinator/openai_responses.h"
#include "nlohmann/json.hpp"

namespace mmx::coordinator {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxBodyBytes = 16 << 20;

void Fail(httplib::Response& res, const absl::Status& status) {
  res.status = HttpStatusOf(status.code());
  if (res.status == 429 || res.status == 503) {
    res.set_header("Retry-After", "1");
    // An overloaded server sheds the connection too: an idle keep-alive connection would hold one
    // of the --http-threads for its whole timeout while new clients wait for a thread.
    res.set_header("Connection", "close");
  }
  res.set_content(OpenAiErrorBody(status), "application/json");
}

// Validation speaks of the gRPC API's fields (sampling.max_tokens, prompt_token_ids); an HTTP
// client sent OpenAI's.
absl::Status InOpenAiTerms(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return status;
  absl::Status renamed(status.code(), absl::StrReplaceAll(status.message(), {{"sampling.", ""},
                                                                             {"prompt_token_ids", "prompt"}}));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { renamed.SetPayload(url, payload); });
  return renamed;
}

// NOT_FOUND for a model this server does not serve, naming the one it does (param "model").
absl::Status ModelNotFound(const std::string& asked, const std::string& served) {
  absl::Status missing = absl::NotFoundError(absl::StrCat("the model '", asked.substr(0, 64),
                                                          "' does not exist; this server serves '", served,
                                                          "' (GET /v1/models)"));
  missing.SetPayload(kOpenAiParamPayload, absl::Cord("model"));
  return missing;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpApiServer>> HttpApiServer::Start(Options options, ServingParts parts) {
  std::unique_ptr<httplib::Server> http;
  if (options.tls.enabled()) {
    if (options.tls.cert.empty() || options.tls.key.empty()) {
      return absl::InvalidArgumentError("HTTPS needs both --tls-cert and --tls-key");
    }
    auto https = std::make_unique<httplib::SSLServer>(
        options.tls.cert.c_str(), options.tls.key.c_str(),
        options.tls.client_ca.empty() ? nullptr : options.tls.client_ca.c_str());
    if (!https->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("--http-listen: cannot serve HTTPS with --tls-cert ",
                                                     options.tls.cert, " and --tls-key ", options.tls.key,
                                                     " (unreadable, not PEM, or not a pair)"));
    }
    http = std::move(https);
  } else {
    http = std::make_unique<httplib::Server>();
  }
  const int threads = std::max(options.threads, 4);
  http->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http->set_read_timeout(std::chrono::seconds(10));    // to send a request: a silent client lets go
  http->set_write_timeout(std::chrono::seconds(30));   // a stream's reader that stops reading is cut
  http->set_keep_alive_timeout(5);
  http->set_payload_max_length(kMaxBodyBytes);
  std::unique_ptr<HttpApiServer> server(new HttpApiServer(std::move(options), std::move(parts)));
  server->Routes(*http);
  absl::StatusOr<std::unique_ptr<HttpListener>> listener =
      HttpListener::Start(std::move(http), server->o_.listen, "--http-listen");
  if (!listener.ok()) return listener.status();
  server->listener_ = *std::move(listener);
  return server;
}

HttpApiServer::HttpApiServer(Options options, ServingParts parts)
    : o_(std::move(options)), parts_(std::move(parts)), started_unix_s_(static_cast<int64_t>(std::time(nullptr))) {}

HttpApiServer::~HttpApiServer() {
  stop_.Raise();
  listener_.reset();
}

void HttpApiServer::Routes(httplib::Server& http) {
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) { Complete(true, req, res); });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { Complete(false, req, res); });
  http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) { Models(req, res, ""); });
  http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    Models(req, res, req.matches[1].str());
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = parts_.cluster->ready() && !parts_.scheduler->draining();
    res.status = ready ? 200 : 503;
    res.set_content(Json{{"status", ready ? "ready" : "not ready"}}.dump() + "\n", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (!o_.render_metrics) {
      Fail(res, absl::NotFoundError("metrics are off on this server"));
      return;
    }
    res.set_content(o_.render_metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      Fail(res, absl::NotFoundError(absl::StrCat("no route ", req.method, " ", req.path,
                                                 ": try POST /v1/chat/completions, POST /v1/completions, "
                                                 "GET /v1/models, GET /health")));
    } else if (res.status == 413) {
      Fail(res, absl::InvalidArgumentError(absl::StrCat("the request body is over ", kMaxBodyBytes, " bytes")));
      res.status = 413;
    }
  });
}

std::optional<Caller> HttpApiServer::Authorize(const httplib::Request& req, httplib::Response& res) {
  absl::StatusOr<Caller> caller = IdentifyCaller(parts_, req.get_header_value("Authorization"));
  if (caller.ok()) return *caller;
  CountRefusal(parts_, caller.status().code());
  Fail(res, caller.status());
  return std::nullopt;
}

void HttpApiServer::Models(const httplib::Request& req, httplib::Response& res, const std::string& id) {
  if (!Authorize(req, res)) return;
  const Json model = {{"id", o_.served_model}, {"object", "model"}, {"created", started_unix_s_}, {"owned_by", "mmx"}};
  if (id.empty()) {
    res.set_content(Json{{"object", "list"}, {"data", Json::array({model})}}.dump(), "application/json");
  } else if (id == o_.served_model) {
    res.set_content(model.dump(), "application/json");
  } else {
    Fail(res, ModelNotFound(id, o_.served_model));
  }
}

void HttpApiServer::Complete(bool chat, const httplib::Request& req, httplib::Response& res) {
  std::optional<Caller> caller = Authorize(req, res);
  if (!caller) return;
  const int max_tokens = parts_.factory->limits().max_tokens;
  absl::StatusOr<OpenAiRequest> parsed =
      chat ? ParseChatCompletionRequest(req.body, max_tokens) : ParseCompletionRequest(req.body, max_tokens);
  if (parsed.ok() && !parsed->model.empty() && parsed->model != o_.served_model) {
    parsed = ModelNotFound(parsed->model, o_.served_model);
  }
  if (!parsed.ok()) {
    CountRefusal(parts_, parsed.status().code());
    Fail(res, parsed.status());
    return;
  }
  absl::StatusOr<AdmittedRequest> admitted = AdmitGenerate(parts_, *caller, parsed->generate);
  if (!admitted.ok()) {
    Fail(res, InOpenAiTerms(admitted.status()));
    return;
  }
  OpenAiResponder::Setup setup;
  setup.id = absl::StrCat(chat ? "chatcmpl-" : "cmpl-", absl::Hex(admitted->request->id(), absl::kZeroPad8));
  setup.created = static_cast<int64_t>(std::time(nullptr));
  setup.model = o_.served_model;
  setup.chat = chat;
  setup.logprobs = parsed->logprobs;
  setup.include_usage = parsed->include_usage;
  setup.tokenizer = parts_.factory->tokenizer();
  HttpCompletion completion(*std::move(admitted), OpenAiResponder(std::move(setup)));
  completion.stream = parsed->stream;
  completion.include_usage = parsed->include_usage;
  completion.echo = parsed->echo;
  completion.drop_output = parsed->drop_output;
  if (parsed->echo) {
    const tokenizer::Tokenizer* tok = parts_.factory->tokenizer();
    const auto& ids = completion.admitted.request->params().prompt;
    completion.prompt_text = parsed->generate.has_prompt() ? parsed->generate.prompt() : tok ? tok->Decode(ids) : "";
  }
  completion.client_socket = FindAcceptedSocket(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  completion.stop = &stop_;
  RespondToCompletion(std::move(completion), res);
}

}  // namespace mmx::coordinator
