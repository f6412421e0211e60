#include "coordinator/client_commands.h"

#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "coordinator/run_command.h"
#include "grpcpp/grpcpp.h"
#include "mmx/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace mmx::coordinator {
namespace {

absl::Status FromGrpc(const grpc::Status& s, const std::string& server) {
  if (s.ok()) return absl::OkStatus();
  std::string message = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && message.find("connect") != std::string::npos) {
    message = absl::StrCat("cannot reach the server at ", server, " (", message, ")");
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), message);
}

const char* StateName(v1::WorkerState s) {
  switch (s) {
    case v1::WORKER_STATE_REGISTERING: return "registering";
    case v1::WORKER_STATE_LOADING: return "loading";
    case v1::WORKER_STATE_READY: return "ready";
    case v1::WORKER_STATE_LOST: return "lost";
    case v1::WORKER_STATE_FAILED: return "failed";
    default: return "unknown";
  }
}

}  // namespace

CLI::App* AddGenerateCommand(CLI::App& app, ClientOptions* o) {
  CLI::App* g = app.add_subcommand("generate", "Generate tokens through an mmx-coord server");
  g->add_option("--server", o->server, "Coordinator address HOST:PORT");
  g->add_option("--prompt-ids", o->prompt_ids, "Prompt token ids, comma-separated")->required();
  g->add_option("--max-tokens", o->max_tokens, "New tokens to generate (>= 1)")->required();
  g->add_option("--temperature", o->temperature, "0 = greedy");
  g->add_option("--top-p", o->top_p, "Nucleus mass in (0, 1]");
  g->add_option("--top-k", o->top_k, "Keep the k most likely (0 = off)");
  g->add_option("--seed", o->seed, "Sampling seed");
  g->add_option("--logprobs", o->logprobs, "Top log-probabilities per token to return");
  g->add_option("--timeout", o->timeout_s, "Seconds before giving up");
  g->add_flag("--json", o->json, "Print one JSON object");
  return g;
}

CLI::App* AddStatusCommand(CLI::App& app, ClientOptions* o) {
  CLI::App* s = app.add_subcommand("status", "Show the cluster's workers and readiness");
  s->add_option("--server", o->server, "Coordinator address HOST:PORT");
  s->add_flag("--json", o->json, "Print one JSON object");
  return s;
}

absl::Status RunGenerateClient(const ClientOptions& o) {
  MMX_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, ParsePromptIds(o.prompt_ids));
  auto stub = v1::Inference::NewStub(grpc::CreateChannel(o.server, grpc::InsecureChannelCredentials()));
  v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
  v1::SamplingParams* s = request.mutable_sampling();
  s->set_max_tokens(o.max_tokens);
  s->set_temperature(o.temperature);
  s->set_top_p(o.top_p);
  s->set_top_k(o.top_k);
  s->set_seed(o.seed);
  s->set_logprobs(o.logprobs);

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_s));
  const auto t0 = std::chrono::steady_clock::now();
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  std::vector<int32_t> output;
  std::vector<float> logprobs;
  nlohmann::json top = nlohmann::json::array();
  std::string finish_reason;
  while (reader->Read(&response)) {
    output.insert(output.end(), response.token_ids().begin(), response.token_ids().end());
    logprobs.insert(logprobs.end(), response.logprobs().begin(), response.logprobs().end());
    for (const auto& t : response.top_logprobs()) {
      nlohmann::json entry = nlohmann::json::array();
      for (int i = 0; i < t.token_ids_size(); ++i) entry.push_back({t.token_ids(i), t.logprobs(i)});
      top.push_back(entry);
    }
    if (!response.finish_reason().empty()) finish_reason = response.finish_reason();
    if (!o.json && response.token_ids_size() > 0) {
      std::printf("%s%s", output.size() == static_cast<size_t>(response.token_ids_size()) ? "" : ",",
                  absl::StrJoin(response.token_ids(), ",").c_str());
      std::fflush(stdout);
    }
  }
  MMX_RETURN_IF_ERROR(FromGrpc(reader->Finish(), o.server));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tps = seconds > 0 ? output.size() / seconds : 0;
  if (o.json) {
    nlohmann::json j;
    j["prompt_ids"] = prompt;
    j["output_ids"] = output;
    j["finish_reason"] = finish_reason;
    j["tokens_per_second"] = tps;
    if (o.logprobs > 0) {
      j["logprobs"] = logprobs;
      j["top_logprobs"] = top;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("\nfinish reason: %s\ntokens/s: %.2f (%zu tokens in %.3f s)\n", finish_reason.c_str(), tps,
                output.size(), seconds);
  }
  return absl::OkStatus();
}

absl::Status RunStatusClient(const ClientOptions& o) {
  auto stub = v1::Inference::NewStub(grpc::CreateChannel(o.server, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ClusterStatus status;
  MMX_RETURN_IF_ERROR(FromGrpc(stub->GetClusterStatus(&context, v1::GetClusterStatusRequest(), &status), o.server));
  if (o.json) {
    nlohmann::json j;
    j["ready"] = status.ready();
    j["model"] = status.model();
    j["running_requests"] = status.running_requests();
    j["workers"] = nlohmann::json::array();
    for (const auto& w : status.workers()) {
      j["workers"].push_back({{"name", w.name()},
                              {"roles", std::vector<std::string>(w.roles().begin(), w.roles().end())},
                              {"state", StateName(w.state())},
                              {"load_progress", w.load_progress()},
                              {"device", w.device()},
                              {"message", w.message()}});
    }
    std::printf("%s\n", j.dump().c_str());
    return absl::OkStatus();
  }
  std::printf("cluster: %s  model: %s  running requests: %d\n", status.ready() ? "ready" : "not ready",
              status.model().c_str(), status.running_requests());
  for (const auto& w : status.workers()) {
    std::string state = StateName(w.state());
    if (w.state() == v1::WORKER_STATE_LOADING) state += absl::StrCat(" ", static_cast<int>(100 * w.load_progress()), "%");
    std::printf("  %-16s %-12s %-6s %s%s\n", w.name().c_str(), state.c_str(), w.device().c_str(),
                absl::StrJoin(w.roles(), " ").c_str(), w.message().empty() ? "" : ("  (" + w.message() + ")").c_str());
  }
  return absl::OkStatus();
}

}  // namespace mmx::coordinator
