#include "tools/client_commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <cstdio>
#include <functional>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "tools/prompt_ids.h"
#include "proto/grpc_status.h"
#include "grpcpp/grpcpp.h"
#include "mmx/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace mmx::tools {
namespace {

const char* StateName(v1::WorkerState s) {
  switch (s) {
    case v1::WORKER_STATE_REGISTERING: return "registering";
    case v1::WORKER_STATE_LOADING: return "loading";
    case v1::WORKER_STATE_READY: return "ready";
    case v1::WORKER_STATE_LOST: return "lost";
    case v1::WORKER_STATE_FAILED: return "failed";
    case v1::WORKER_STATE_STANDBY: return "standby";
    default: return "unknown";
  }
}

}  // namespace

void AddSamplingOptions(CLI::App* c, ClientOptions* o) {
  c->add_option("--temperature", o->temperature, "0 = greedy");
  c->add_option("--top-p", o->top_p, "Nucleus mass in (0, 1]");
  c->add_option("--top-k", o->top_k, "Keep the k most likely (0 = off)");
  c->add_option("--seed", o->seed, "Sampling seed");
  c->add_option("--stop", o->stop, "Stop string (repeatable)");
  c->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at the end-of-sentence token");
  c->add_option("--timeout", o->timeout_s, "Seconds before giving up");
}

CLI::App* AddGenerateCommand(CLI::App& app, ClientOptions* o) {
  CLI::App* g = app.add_subcommand("generate", "Generate through an mmx-coord server (text or token ids)");
  AddConnectionOptions(g, &o->connection);
  auto* text = g->add_option("--prompt", o->prompt, "Prompt text (streamed back as text)");
  auto* ids = g->add_option("--prompt-ids", o->prompt_ids, "Prompt token ids, comma-separated");
  text->excludes(ids);
  g->add_option("--max-tokens", o->max_tokens, "New tokens to generate (>= 1)")->required();
  g->add_option("--logprobs", o->logprobs, "Top log-probabilities per token to return");
  AddSamplingOptions(g, o);
  g->add_flag("--json", o->json, "Print one JSON object");
  return g;
}

CLI::App* AddChatCommand(CLI::App& app, ClientOptions* o) {
  CLI::App* c = app.add_subcommand("chat", "Chat through an mmx-coord server: one user turn per line of stdin");
  AddConnectionOptions(c, &o->connection);
  c->add_option("--system", o->system, "System message");
  c->add_option("--max-tokens", o->max_tokens, "Longest reply, in tokens");
  AddSamplingOptions(c, o);
  return c;
}

CLI::App* AddStatusCommand(CLI::App& app, ClientOptions* o) {
  CLI::App* s = app.add_subcommand("status", "Show the cluster's workers, readiness and serving statistics");
  AddConnectionOptions(s, &o->connection);
  s->add_flag("--json", o->json, "Print one JSON object");
  return s;
}

namespace {

void FillSampling(const ClientOptions& o, v1::SamplingParams* s) {
  s->set_max_tokens(o.max_tokens);
  s->set_temperature(o.temperature);
  if (o.top_p != 0.f) s->set_top_p(o.top_p);
  s->set_top_k(o.top_k);
  s->set_seed(o.seed);
  s->set_logprobs(o.logprobs);
  s->set_ignore_eos(o.ignore_eos);
  for (const std::string& stop : o.stop) s->add_stop(stop);
}

struct Streamed {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  nlohmann::json top = nlohmann::json::array();
  std::string text;
  std::string finish_reason;
  v1::Usage usage;
  double seconds = 0;
};

// Runs one Generate; `on_response` sees each response as it arrives (for streaming output).
absl::Status Stream(const ClientOptions& o, const v1::GenerateRequest& request, Streamed* out,
                    const std::function<void(const v1::GenerateResponse&)>& on_response) {
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<v1::Inference::Stub> stub, ConnectInference(o.connection));
  grpc::ClientContext context;
  Authorize(&context, o.connection);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_s));
  const auto t0 = std::chrono::steady_clock::now();
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    out->ids.insert(out->ids.end(), response.token_ids().begin(), response.token_ids().end());
    out->logprobs.insert(out->logprobs.end(), response.logprobs().begin(), response.logprobs().end());
    for (const auto& t : response.top_logprobs()) {
      nlohmann::json entry = nlohmann::json::array();
      for (int i = 0; i < t.token_ids_size(); ++i) entry.push_back({t.token_ids(i), t.logprobs(i)});
      out->top.push_back(entry);
    }
    out->text += response.text();
    if (!response.finish_reason().empty()) out->finish_reason = response.finish_reason();
    if (response.has_usage()) out->usage = response.usage();
    if (on_response) on_response(response);
  }
  out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return FromGrpcStatus(reader->Finish(), o.connection.server);
}

}  // namespace

absl::Status RunGenerateClient(const ClientOptions& o) {
  if (o.prompt.empty() == o.prompt_ids.empty()) {
    return absl::InvalidArgumentError("give --prompt TEXT or --prompt-ids IDS");
  }
  v1::GenerateRequest request;
  std::vector<int32_t> prompt;
  if (!o.prompt_ids.empty()) {
    MMX_ASSIGN_OR_RETURN(prompt, ParsePromptIds(o.prompt_ids));
    request.mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
  } else {
    request.set_prompt(o.prompt);
  }
  FillSampling(o, request.mutable_sampling());
  const bool text_mode = !o.prompt.empty();
  Streamed out;
  size_t printed_ids = 0;
  MMX_RETURN_IF_ERROR(Stream(o, request, &out, [&](const v1::GenerateResponse& r) {
    if (o.json) return;
    if (text_mode) {
      std::fwrite(r.text().data(), 1, r.text().size(), stdout);
    } else if (r.token_ids_size() > 0) {
      std::printf("%s%s", printed_ids == 0 ? "" : ",", absl::StrJoin(r.token_ids(), ",").c_str());
      printed_ids += r.token_ids_size();
    }
    std::fflush(stdout);
  }));
  const double tps = out.seconds > 0 ? out.ids.size() / out.seconds : 0;
  if (o.json) {
    nlohmann::json j;
    j["prompt_ids"] = prompt;
    if (text_mode) j["prompt"] = o.prompt;
    j["output_ids"] = out.ids;
    j["text"] = out.text;
    j["finish_reason"] = out.finish_reason;
    j["usage"] = {{"prompt_tokens", out.usage.prompt_tokens()}, {"completion_tokens", out.usage.completion_tokens()}};
    j["tokens_per_second"] = tps;
    if (o.logprobs > 0) {
      j["logprobs"] = out.logprobs;
      j["top_logprobs"] = out.top;
    }
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (text_mode) {
    std::printf("\n");
    std::fflush(stdout);  // the text's last line before the summary on stderr
    std::fprintf(stderr, "[finish reason: %s; %d prompt + %d generated tokens; %.2f tokens/s]\n",
                 out.finish_reason.c_str(), out.usage.prompt_tokens(), out.usage.completion_tokens(), tps);
  } else {
    std::printf("\nfinish reason: %s\ntokens/s: %.2f (%zu tokens in %.3f s)\n", out.finish_reason.c_str(), tps,
                out.ids.size(), out.seconds);
  }
  return absl::OkStatus();
}

absl::Status RunChatClient(const ClientOptions& o) {
  std::vector<v1::ChatMessage> history;
  if (!o.system.empty()) {
    v1::ChatMessage m;
    m.set_role("system");
    m.set_content(o.system);
    history.push_back(m);
  }
  const bool interactive = isatty(0);
  std::string line;
  while (true) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    v1::ChatMessage user;
    user.set_role("user");
    user.set_content(line);
    history.push_back(user);
    v1::GenerateRequest request;
    for (const v1::ChatMessage& m : history) *request.add_messages() = m;
    FillSampling(o, request.mutable_sampling());
    Streamed out;
    MMX_RETURN_IF_ERROR(Stream(o, request, &out, [](const v1::GenerateResponse& r) {
      std::fwrite(r.text().data(), 1, r.text().size(), stdout);
      std::fflush(stdout);
    }));
    std::printf("\n");
    std::fflush(stdout);
    v1::ChatMessage reply;
    reply.set_role("assistant");
    reply.set_content(out.text);
    history.push_back(reply);
  }
  return absl::OkStatus();
}

absl::Status RunStatusClient(const ClientOptions& o) {
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<v1::Inference::Stub> stub, ConnectInference(o.connection));
  grpc::ClientContext context;
  Authorize(&context, o.connection);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ClusterStatus status;
  MMX_RETURN_IF_ERROR(FromGrpcStatus(stub->GetClusterStatus(&context, v1::GetClusterStatusRequest(), &status), o.connection.server));
  if (o.json) {
    nlohmann::json j;
    j["ready"] = status.ready();
    j["model"] = status.model();
    j["running_requests"] = status.running_requests();
    const v1::ServingStats& st = status.stats();
    j["stats"] = {{"requests_total", st.requests_total()},
                  {"requests_failed", st.requests_failed()},
                  {"prompt_tokens_total", st.prompt_tokens_total()},
                  {"generated_tokens_total", st.generated_tokens_total()},
                  {"queue_depth", st.queue_depth()},
                  {"time_to_first_token_p50_s", st.time_to_first_token_p50_s()},
                  {"time_per_output_token_p50_s", st.time_per_output_token_p50_s()},
                  {"step_p50_s", st.step_p50_s()},
                  {"paused_requests", st.paused_requests()},
                  {"failovers_total", st.failovers_total()},
                  {"steps_in_flight", st.steps_in_flight()},
                  {"steps_in_flight_limit", st.steps_in_flight_limit()},
                  {"overlapped_steps_total", st.overlapped_steps_total()},
                  {"worker_step_p50_s", std::map<std::string, double>(st.worker_step_p50_s().begin(),
                                                                      st.worker_step_p50_s().end())}};
    j["metrics_address"] = status.metrics_address();
    j["workers"] = nlohmann::json::array();
    for (const auto& w : status.workers()) {
      j["workers"].push_back({{"name", w.name()},
                              {"roles", std::vector<std::string>(w.roles().begin(), w.roles().end())},
                              {"state", StateName(w.state())},
                              {"load_progress", w.load_progress()},
                              {"device", w.device()},
                              {"process", w.process_name()},
                              {"group", w.group()},
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
    // A standby serving a lost worker's entry: say which process holds it.
    if (!w.process_name().empty() && w.process_name() != w.name()) state += " by " + w.process_name();
    const auto step = status.stats().worker_step_p50_s().find(w.name());
    const std::string timing = step == status.stats().worker_step_p50_s().end()
                                   ? ""
                                   : absl::StrFormat("  step p50 %.1f ms", 1e3 * step->second);
    const std::string group = w.group().empty() ? "" : " (group " + w.group() + ")";
    std::printf("  %-16s %-12s %-6s %s%s%s%s\n", w.name().c_str(), state.c_str(), w.device().c_str(),
                absl::StrJoin(w.roles(), " ").c_str(), group.c_str(), timing.c_str(),
                w.message().empty() ? "" : ("  (" + w.message() + ")").c_str());
  }
  // Attention groups, when the config names them: each serves its own sequences.
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& w : status.workers()) {
    if (w.group().empty()) continue;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == w.group(); });
    if (it == groups.end()) it = groups.insert(groups.end(), {w.group(), {}});
    it->second.push_back(w.name());
  }
  if (!groups.empty()) {
    std::vector<std::string> parts;
    for (const auto& [name, members] : groups) parts.push_back(absl::StrCat(name, " (", absl::StrJoin(members, ", "), ")"));
    std::printf("attention groups: %s\n", absl::StrJoin(parts, "; ").c_str());
  }
  const v1::ServingStats& st = status.stats();
  std::printf("requests: %lld (%lld failed), queue %d, paused %d (failovers: %lld); tokens: %lld prompt, %lld generated\n",
              static_cast<long long>(st.requests_total()), static_cast<long long>(st.requests_failed()), st.queue_depth(),
              st.paused_requests(), static_cast<long long>(st.failovers_total()),
              static_cast<long long>(st.prompt_tokens_total()), static_cast<long long>(st.generated_tokens_total()));
  std::printf("steps in flight: %d of %d; latency p50: first token %.1f ms, per output token %.1f ms, step %.1f ms\n",
              st.steps_in_flight(), st.steps_in_flight_limit(), 1e3 * st.time_to_first_token_p50_s(),
              1e3 * st.time_per_output_token_p50_s(), 1e3 * st.step_p50_s());
  if (!status.metrics_address().empty()) std::printf("metrics: http://%s/metrics\n", status.metrics_address().c_str());
  return absl::OkStatus();
}

}  // namespace mmx::tools
