#include "tools/serve_command.h"

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "coordinator/api_keys.h"
#include "coordinator/cluster.h"
#include "coordinator/control_service.h"
#include "coordinator/http_api.h"
#include "coordinator/inference_service.h"
#include "coordinator/job_runner.h"
#include "coordinator/job_store.h"
#include "coordinator/metrics.h"
#include "coordinator/metrics_http.h"
#include "coordinator/request_factory.h"
#include "coordinator/scheduler.h"
#include "grpcpp/grpcpp.h"
#include "model/checkpoint.h"
#include "model/checkpoint_fingerprint.h"
#include "model/tensor_digests.h"
#include "model/state_bytes.h"
#include "plan/shard_config.h"
#include "proto/join_token.h"
#include "transport/net_interface.h"
#include "transport/ucx_transport.h"

namespace mmx::tools {

CLI::App* AddServeCommand(CLI::App& app, ServeOptions* o) {
  CLI::App* serve = app.add_subcommand("serve", "Coordinate a cluster of mmx-worker processes and serve the API");
  auto* shard = serve->add_option("--shard-config", o->shard_config, "Shard config (YAML): which worker holds what");
  auto* model = serve->add_option("--model", o->model_dir, "Checkpoint directory, to plan from live workers");
  auto* expect = serve->add_option("--expect-workers", o->expect_workers,
                                   "With --model: plan once this many workers have registered")
                     ->check(CLI::PositiveNumber);
  serve->add_option("--max-context", o->max_context, "With --model: context length the plan must hold");
  shard->excludes(model);
  model->needs(expect);
  expect->needs(model);
  serve->add_option("--listen", o->listen, "gRPC address for clients, and for workers unless --control-listen");
  serve->add_option("--control-listen", o->control_listen,
                    "The worker control plane's own address (HOST:PORT), e.g. on the cluster network while "
                    "--listen faces clients (default: --listen)");
  serve->add_option("--tls-cert", o->tls.cert, "Serve over TLS with this PEM certificate chain (with --tls-key)");
  serve->add_option("--tls-key", o->tls.key, "The PEM private key of --tls-cert");
  serve->add_option("--tls-client-ca", o->tls.client_ca,
                    "Require every client and worker to present a certificate signed by this CA (mutual TLS)");
  serve->add_option("--api-keys", o->api_keys,
                    "Require an API key: a file of `NAME ROLE KEY` lines (ROLE user or admin), read again on SIGHUP");
  serve->add_option("--max-concurrent-per-key", o->max_concurrent_per_key,
                    "With --api-keys: Generate calls one key may have open at once (0 = no limit)")
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--http-listen", o->http_listen,
                    "Serve the OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, "
                    "/health, /metrics) on HOST:PORT, over HTTPS with --tls-cert (default: off)");
  serve->add_option("--served-model-name", o->served_model_name,
                    "The model's name in the HTTP API (default: the checkpoint directory's name)");
  serve->add_option("--http-threads", o->http_threads,
                    "HTTP requests handled at once, each open completion holding one (default: --max-concurrent + "
                    "--max-queue, at most 256, plus 8 for /health and /metrics)")
      ->check(CLI::Range(0, 4096));
  serve->add_option("--data-interface", o->data_interface,
                    "Network device(s) of the coordinator's data plane (default: the interface of the control "
                    "plane's address, and every RDMA port; every device when that is 0.0.0.0)");
  serve->add_option("--join-token-file", o->join_token_file,
                    "Refuse workers that do not show this file's token (mmx-worker --join-token-file)");
  serve->add_flag("--insecure", o->insecure,
                  "Allow plain text on a --listen address other than loopback (a trusted network only)");
  serve->add_option("--max-concurrent,--max-sequences", o->max_sequences, "Requests running at once (the batch)")
      ->check(CLI::Range(1, 4096));
  serve->add_option("--max-queue", o->max_queue, "Requests waiting beyond those; more get RESOURCE_EXHAUSTED")
      ->check(CLI::Range(0, 1000000));
  serve->add_option("--max-job-share", o->max_job_share,
                    "Share of --max-concurrent that batch jobs' requests may hold (at least one); interactive "
                    "requests come first and preempt job requests when they find no room")
      ->check(CLI::Range(0.0, 1.0));
  serve->add_option("--max-prompt-tokens", o->max_prompt_tokens, "Longest prompt accepted, in tokens")
      ->check(CLI::Range(1, 1 << 30));
  serve->add_option("--max-tokens", o->max_tokens, "Largest sampling.max_tokens accepted")->check(CLI::Range(1, 1 << 30));
  serve->add_option("--prefill-chunk", o->prefill_chunk, "Prompt tokens per sequence per step")->check(CLI::Range(1, 1 << 20));
  serve->add_option("--max-step-tokens", o->max_step_tokens,
                    "Tokens per step: decode tokens first, then prompt chunks")->check(CLI::Range(1, 1 << 20));
  serve->add_option("--state-dir", o->state_dir, "Directory for durable state (batch jobs, SQLite); jobs are off without it");
  serve->add_option("--metrics-listen", o->metrics_listen,
                    "HOST:PORT for Prometheus metrics (/metrics) and /healthz; default: loopback (127.0.0.1, or "
                    "the --listen host when it is loopback), the --listen port + 1; 'off' for none");
  serve->add_option("--tokenizer", o->tokenizer, "tokenizer.json (default: the checkpoint's, if it has one)");
  serve->add_option("--micro-batches", o->micro_batches,
                    "Micro-batches in flight per step when there are enough sequences; 0 = automatic: 2, or 1 "
                    "with one worker or when workers share a host's cores (nothing could overlap)")
      ->check(CLI::Range(0, 16));
  serve->add_option("--steps-in-flight", o->steps_in_flight,
                    "Waves of running sequences with a step out at once, each wave's next step leaving as soon as "
                    "its tokens are back; 0 = automatic: one per attention stage in a row (so each has work), or 1 "
                    "when workers share a host's cores")
      ->check(CLI::Range(0, 64));
  serve->add_option("--kv-dtype", o->kv_dtype,
                    "The softmax KV cache's dtype on every attention worker: bf16 (as the model is served) or fp32 "
                    "(golden-exact, twice the memory); default: the shard config's serving.kv_dtype, else bf16")
      ->check(CLI::IsMember({"bf16", "fp32"}));
  serve->add_option("--wire-dtype", o->wire_dtype,
                    "How activations cross between workers: fp32 (as computed, golden-exact) or bf16 (half the "
                    "bytes on the network, one rounding per crossing); default: the shard config's "
                    "serving.wire_dtype, else fp32")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  serve->add_option("--failover-timeout", o->failover_timeout_s,
                    "Seconds running requests stay paused when a worker is lost, waiting for it (or a standby) to "
                    "take its place and their state to be replayed; past it they end UNAVAILABLE. 0 = end them at once")
      ->check(CLI::Range(0.0, 86400.0));
  serve->add_option("--shutdown-timeout", o->shutdown_timeout_s,
                    "On SIGTERM: seconds running requests may take to finish before the coordinator exits "
                    "(it admits nothing new meanwhile)")
      ->check(CLI::Range(0.0, 86400.0));
  serve->add_option("--heartbeat-timeout", o->heartbeat_timeout_s,
                    "Seconds without a heartbeat after which a worker is lost (frozen, or its link down), and after "
                    "which a worker gives up a silent coordinator and registers again")
      ->check(CLI::Range(0.2, 3600.0));
  return serve;
}

namespace {

// Loads a shard config and checks it against its checkpoint (headers only: the coordinator
// holds no weights, but checks the plan against the real model before any worker loads).
absl::Status LoadAndCheck(const std::string& path, plan::ShardConfig* shard,
                          std::unique_ptr<model::Checkpoint>* checkpoint) {
  MMX_ASSIGN_OR_RETURN(*shard, plan::LoadShardConfig(path));
  MMX_ASSIGN_OR_RETURN(*checkpoint, model::Checkpoint::Open(shard->model));
  MMX_RETURN_IF_ERROR((*checkpoint)->ValidateAgainstConfig());
  return plan::ValidateShardConfig(*shard, (*checkpoint)->config());
}

}  // namespace

CLI::App* AddCheckCommand(CLI::App& app, CheckOptions* o) {
  CLI::App* check = app.add_subcommand("check", "Validate a shard config against its checkpoint");
  check->add_option("--shard-config", o->shard_config, "Shard config (YAML)")->required();
  check->add_flag("--list-workers", o->list_workers, "Print only the worker names, one per line");
  check->add_flag("--list-devices", o->list_devices, "Print each worker's name and device, one worker per line");
  check->add_flag("--list-expert-hosts", o->list_expert_hosts,
                  "Print only the names of the workers that hold experts and nothing else, one per line");
  return check;
}

absl::Status Check(const CheckOptions& o) {
  plan::ShardConfig shard;
  std::unique_ptr<model::Checkpoint> checkpoint;
  MMX_RETURN_IF_ERROR(LoadAndCheck(o.shard_config, &shard, &checkpoint));
  if (o.list_workers) {
    for (const auto& w : shard.workers) std::printf("%s\n", w.name.c_str());
    return absl::OkStatus();
  }
  if (o.list_devices) {
    for (const auto& w : shard.workers) std::printf("%s %s\n", w.name.c_str(), w.device.c_str());
    return absl::OkStatus();
  }
  if (o.list_expert_hosts) {
    for (const auto& w : shard.workers) {
      if (!w.experts.empty() && !w.attention && !w.embedding && !w.lm_head) std::printf("%s\n", w.name.c_str());
    }
    return absl::OkStatus();
  }
  std::printf("%s: valid for %s (%d layers, %d experts each), %zu workers\n", o.shard_config.c_str(),
              shard.model.c_str(), checkpoint->config().num_hidden_layers, checkpoint->config().num_local_experts,
              shard.workers.size());
  for (const auto& w : shard.workers) {
    std::string roles;
    for (const std::string& r : coordinator::DescribeRoles(w)) roles += " " + r;
    if (!w.group.empty()) roles += " (group " + w.group + ")";
    std::printf("  %-16s %-6s%s\n", w.name.c_str(), w.device.c_str(), roles.c_str());
  }
  const std::vector<std::string> groups = plan::AttentionGroups(shard);
  if (groups.size() > 1 || (groups.size() == 1 && !groups[0].empty())) {
    std::printf("attention groups: %zu, sharing the expert hosts\n", groups.size());
    for (const std::string& g : groups) {
      std::vector<std::string> members;
      for (const auto& w : shard.workers) {
        if (w.group == g && !w.experts_only()) members.push_back(w.name);
      }
      std::printf("  %-16s %s\n", g.empty() ? "(unnamed)" : g.c_str(), absl::StrJoin(members, ", ").c_str());
    }
  }
  return absl::OkStatus();
}

namespace {

using coordinator::Cluster;

// The coordinator's data-plane devices: --data-interface, else the interface of the control
// plane's address when it names one (every device for 0.0.0.0 or ::).
std::string CoordinatorDataDevices(const ServeOptions& o) {
  if (!o.data_interface.empty()) return o.data_interface;
  const std::string& control = o.control_listen.empty() ? o.listen : o.control_listen;
  const std::string host = control.substr(0, control.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") return "";
  absl::StatusOr<std::string> interface = transport::InterfaceReaching(control);
  return interface.ok() ? transport::DataPlaneDevices(*interface) : "";
}

// Every tensor's SHA-256, for checking what workers load: from the cache beside the checkpoint
// (or in the state directory), else computed (the whole checkpoint is read once) and cached.
absl::StatusOr<model::TensorDigests> TensorDigestsOf(const model::Checkpoint& checkpoint, const std::string& state_dir) {
  const std::string cache = model::DigestCachePath(checkpoint, state_dir);
  const absl::Time start = absl::Now();
  bool computed = false;
  MMX_ASSIGN_OR_RETURN(model::TensorDigests digests, model::CachedTensorDigests(checkpoint, cache, &computed));
  std::string how = absl::StrCat("read from ", cache);
  if (computed) {
    how = absl::StrCat("computed in ", absl::FormatDuration(absl::Now() - start),
                       cache.empty() ? " (no writable place to cache them: give --state-dir)"
                                     : absl::StrCat(", cached in ", cache));
  }
  std::fprintf(stderr, "mmx-coord: checkpoint data: %zu tensor digests %s\n", digests.size(), how.c_str());
  return digests;
}

// The cluster of a shard config, or one that plans from the workers that register.
std::unique_ptr<Cluster> MakeCluster(const ServeOptions& o, const plan::ShardConfig& shard,
                                     const model::Checkpoint& checkpoint, transport::Transport* data_plane,
                                     transport::ClusterToken token) {
  const std::string fingerprint = model::CheckpointFingerprint(checkpoint);
  if (!o.shard_config.empty()) {
    return std::make_unique<Cluster>(shard, checkpoint.config(), fingerprint, data_plane, token);
  }
  Cluster::LivePlanning planning;
  planning.model_dir = o.model_dir;
  planning.expect_workers = o.expect_workers;
  planning.serving.max_sequences = o.max_sequences;
  if (o.max_context > 0) planning.serving.max_context = o.max_context;
  planning.serving.kv_dtype = shard.kv_dtype;
  planning.serving.wire_dtype = shard.wire_dtype;
  return std::make_unique<Cluster>(planning, checkpoint.config(), fingerprint, data_plane, token);
}

// The tokenizer: text in and out. Without one (null), the server takes and returns token ids only.
// Only ids the tokenizer defines are sampled: the model's padding rows map to no text.
absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadServingTokenizer(const ServeOptions& o,
                                                                           const std::string& model_dir,
                                                                           const model::ModelConfig& config,
                                                                           Cluster& cluster) {
  const std::string path = o.tokenizer.empty() ? model_dir + "/tokenizer.json" : o.tokenizer;
  if (o.tokenizer.empty() && !std::filesystem::exists(path)) {
    std::fprintf(stderr, "mmx-coord: no %s: token ids only (no text prompts, messages or stop strings)\n",
                 path.c_str());
    return nullptr;
  }
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, tokenizer::Tokenizer::Load(path));
  std::vector<int32_t> ranges;
  int64_t defined = 0;
  for (int32_t id = 0; id < config.vocab_size; ++id) {
    if (!tok->IsDefined(id)) continue;
    ++defined;
    if (!ranges.empty() && ranges.back() == id) {
      ++ranges.back();
    } else {
      ranges.push_back(id);
      ranges.push_back(id + 1);
    }
  }
  cluster.SetSampleableRanges(std::move(ranges));
  std::fprintf(stderr, "mmx-coord: tokenizer %s: samples the %lld of %lld ids it defines\n", path.c_str(),
               static_cast<long long>(defined), static_cast<long long>(config.vocab_size));
  return tok;
}

// Prometheus metrics over HTTP, next to the gRPC port unless told otherwise. Null when off;
// `address` receives where it listens.
absl::StatusOr<std::unique_ptr<coordinator::MetricsHttpServer>> StartMetricsServer(const ServeOptions& o,
                                                                                   coordinator::Metrics& metrics,
                                                                                   Cluster& cluster,
                                                                                   std::string* address) {
  if (o.metrics_listen == "off") return nullptr;
  std::string wanted = o.metrics_listen.empty() ? rpc::DefaultMetricsAddress(o.listen) : o.metrics_listen;
  const std::string listen_host = wanted.substr(0, wanted.rfind(':'));
  auto render = [&metrics] { return metrics.RenderPrometheus(); };
  auto healthy = [&cluster] { return cluster.ready(); };
  absl::StatusOr<std::unique_ptr<coordinator::MetricsHttpServer>> started =
      coordinator::MetricsHttpServer::Start(wanted, render, healthy);
  if (!started.ok() && o.metrics_listen.empty()) {
    // The default port is taken (another server next door): any free port; status shows it.
    wanted = absl::StrCat(listen_host, ":0");
    started = coordinator::MetricsHttpServer::Start(wanted, render, healthy);
  }
  if (!started.ok()) return started.status();
  *address = absl::StrCat(wanted.substr(0, wanted.rfind(':')), ":", (*started)->port());
  return started;
}

// The OpenAI-compatible HTTP API on --http-listen, sharing the gRPC API's scheduler and keys.
absl::StatusOr<std::unique_ptr<coordinator::HttpApiServer>> StartHttpApi(const ServeOptions& o,
                                                                          const coordinator::ServingParts& parts,
                                                                          coordinator::Metrics& metrics,
                                                                          const std::string& model_dir) {
  coordinator::HttpApiServer::Options http;
  http.listen = o.http_listen;
  http.served_model = o.served_model_name;
  if (http.served_model.empty()) {
    http.served_model = std::filesystem::path(model_dir).lexically_normal().filename().string();
    if (http.served_model.empty()) {  // "out/models/small/" normalizes to a trailing empty name
      http.served_model = std::filesystem::path(model_dir).lexically_normal().parent_path().filename().string();
    }
  }
  http.threads = o.http_threads > 0 ? o.http_threads : std::min(o.max_sequences + o.max_queue, 256) + 8;
  http.tls = o.tls;
  http.render_metrics = [&metrics] { return metrics.RenderPrometheus(); };
  const std::string served = http.served_model;
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::HttpApiServer> server,
                       coordinator::HttpApiServer::Start(std::move(http), parts));
  const std::string host = o.http_listen.substr(0, o.http_listen.rfind(':'));
  std::printf("mmx-coord: OpenAI-compatible HTTP API on %s://%s:%d/v1 (model \"%s\")\n", o.tls.enabled() ? "https" : "http",
              host.c_str(), server->port(), served.c_str());
  return server;
}

// Serves the control plane and the API on o.listen until SIGINT or SIGTERM. The gRPC health
// service (grpc.health.v1) says SERVING while the cluster is ready, for the whole server ("")
// and for the Inference service.
absl::Status ServeUntilSignalled(const ServeOptions& o, Cluster& cluster, coordinator::Scheduler& scheduler,
                                 coordinator::ControlService& control, coordinator::InferenceService& inference,
                                 size_t expected_workers, const std::string& model,
                                 const std::string& metrics_address, coordinator::ApiKeys* keys) {
  // Block the stop signals before gRPC starts its threads, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t waited = stop_signals;  // and SIGHUP: the API keys file is read again
  sigaddset(&waited, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &waited, nullptr);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  MMX_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, rpc::MakeServerCredentials(o.tls));
  builder.AddListeningPort(o.listen, credentials, &port);
  const bool split = !o.control_listen.empty() && o.control_listen != o.listen;
  if (!split) builder.RegisterService(&control);
  builder.RegisterService(&inference);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen, " (address in use or not local?)"));
  }
  // The control plane on its own address: workers register there, clients reach only the API.
  std::unique_ptr<grpc::Server> control_server;
  if (split) {
    grpc::ServerBuilder control_builder;
    int control_port = 0;
    control_builder.AddListeningPort(o.control_listen, credentials, &control_port);
    control_builder.RegisterService(&control);
    control_server = control_builder.BuildAndStart();
    if (!control_server || control_port == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", o.control_listen, " (--control-listen: address in use or not local?)"));
    }
    std::printf("mmx-coord: worker control plane on %s:%d\n",
                o.control_listen.substr(0, o.control_listen.rfind(':')).c_str(), control_port);
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  health->SetServingStatus("mmx.v1.Inference", false);
  const uint64_t subscription = cluster.Subscribe([health](bool ready, uint64_t) {
    health->SetServingStatus(ready);
    health->SetServingStatus("mmx.v1.Inference", ready);
  });
  const std::string host = o.listen.substr(0, o.listen.rfind(':'));
  std::printf("mmx-coord: listening on %s:%d, waiting for %zu workers (model %s)\n", host.c_str(), port,
              expected_workers, model.c_str());
  if (!metrics_address.empty()) std::printf("mmx-coord: metrics on http://%s/metrics\n", metrics_address.c_str());
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&waited, &sig) == 0 && sig == SIGHUP) {
    if (keys == nullptr) continue;
    const absl::Status reloaded = keys->Reload();
    std::fprintf(stderr, "mmx-coord: SIGHUP: %s\n",
                 reloaded.ok() ? absl::StrCat("API keys read again (", keys->size(), " keys)").c_str()
                               : absl::StrCat(reloaded.message(), "; the keys in force stay").c_str());
  }
  // Stop admitting (health NOT_SERVING, new and waiting requests UNAVAILABLE), let the running
  // ones finish within --shutdown-timeout. Jobs resume after a restart (--state-dir).
  cluster.Unsubscribe(subscription);
  health->SetServingStatus(false);
  health->SetServingStatus("mmx.v1.Inference", false);
  const int running = scheduler.running();
  std::fprintf(stderr, "mmx-coord: signal %d: not admitting; %d running requests may finish within %gs "
               "(--shutdown-timeout; a second signal stops now)\n", sig, running, o.shutdown_timeout_s);
  scheduler.Drain("the coordinator is shutting down; retry later or on another one");
  auto again = std::make_shared<std::atomic<bool>>(false);  // outlives this call: the thread may not
  std::thread([again, stop_signals] {
    int s2 = 0;
    sigwait(&stop_signals, &s2);
    *again = true;
  }).detach();
  const absl::Time give_up = absl::Now() + absl::Seconds(o.shutdown_timeout_s);
  bool idle = false;
  while (!idle && !*again && absl::Now() < give_up) idle = scheduler.WaitIdle(std::min(give_up - absl::Now(), absl::Milliseconds(200)));
  std::fprintf(stderr, "mmx-coord: %s, shutting down\n",
               idle ? "no request running" : absl::StrCat(scheduler.running(), " requests still running end UNAVAILABLE").c_str());
  if (control_server) control_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return absl::OkStatus();
}

}  // namespace

absl::Status Serve(const ServeOptions& o) {
  if (o.shard_config.empty() && o.model_dir.empty()) {
    return absl::InvalidArgumentError("give --shard-config FILE, or --model DIR --expect-workers N to plan from live workers");
  }
  // Secure by default: plain text only where nobody else can connect, or when asked for.
  for (const std::string& address : {o.listen, o.control_listen, o.http_listen}) {
    if (address.empty() || o.tls.enabled() || o.insecure || rpc::IsLoopbackAddress(address)) continue;
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to serve plain text on ", address,
                     ": give --tls-cert FILE --tls-key FILE (deploy/certs.sh makes them), or --insecure on a "
                     "trusted network"));
  }
  MMX_RETURN_IF_ERROR(rpc::MakeServerCredentials(o.tls).status());  // bad files fail before loading
  std::unique_ptr<coordinator::ApiKeys> keys;
  if (!o.api_keys.empty()) {
    MMX_ASSIGN_OR_RETURN(keys, coordinator::ApiKeys::Load(o.api_keys));
  }
  std::string join_token;
  if (!o.join_token_file.empty()) {
    MMX_ASSIGN_OR_RETURN(join_token, rpc::ReadJoinTokenFile(o.join_token_file));
  }
  plan::ShardConfig shard;
  std::unique_ptr<model::Checkpoint> checkpoint;
  if (!o.shard_config.empty()) {
    MMX_RETURN_IF_ERROR(LoadAndCheck(o.shard_config, &shard, &checkpoint));
  } else {
    MMX_ASSIGN_OR_RETURN(checkpoint, model::Checkpoint::Open(o.model_dir));
    MMX_RETURN_IF_ERROR(checkpoint->ValidateAgainstConfig());
  }
  if (!o.kv_dtype.empty()) {
    MMX_ASSIGN_OR_RETURN(shard.kv_dtype, model::ParseKvDType(o.kv_dtype));
  }
  if (!o.wire_dtype.empty()) {
    MMX_ASSIGN_OR_RETURN(shard.wire_dtype, ParseWireDType(o.wire_dtype));
  }
  const model::ModelConfig& config = checkpoint->config();

  transport::TransportOptions topts;
  topts.self = 0;
  topts.cluster_token = transport::ClusterToken::Random();
  transport::UcxTransportOptions ucx_options;
  ucx_options.net_devices = CoordinatorDataDevices(o);
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<transport::UcxTransport> data_plane,
                       transport::UcxTransport::Create(topts, ucx_options));
  std::unique_ptr<Cluster> cluster = MakeCluster(o, shard, *checkpoint, data_plane.get(), topts.cluster_token);
  cluster->set_heartbeat_timeout(absl::Seconds(o.heartbeat_timeout_s));
  MMX_ASSIGN_OR_RETURN(model::TensorDigests digests, TensorDigestsOf(*checkpoint, o.state_dir));
  cluster->set_tensor_digests(std::move(digests));

  const std::string model_dir = o.shard_config.empty() ? o.model_dir : shard.model;
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok,
                       LoadServingTokenizer(o, model_dir, config, *cluster));
  coordinator::ServingLimits limits;
  limits.max_prompt_tokens = o.max_prompt_tokens;
  limits.max_tokens = o.max_tokens;
  coordinator::RequestFactory factory(config, tok.get(), limits);
  coordinator::Metrics metrics;

  coordinator::SchedulerOptions sopts;
  sopts.max_sequences = o.max_sequences;
  sopts.max_queue = o.max_queue;
  sopts.max_job_share = o.max_job_share;
  sopts.prefill_chunk = o.prefill_chunk;
  sopts.max_step_tokens = std::max(o.max_step_tokens, o.max_sequences);
  sopts.micro_batches = o.micro_batches;
  sopts.steps_in_flight = o.steps_in_flight;
  sopts.failover_timeout = absl::Seconds(o.failover_timeout_s);
  sopts.log = [](const std::string& line) { std::fprintf(stderr, "mmx-coord: %s\n", line.c_str()); };
  coordinator::Scheduler scheduler(cluster.get(), data_plane.get(), sopts, &metrics);

  std::unique_ptr<coordinator::JobStore> jobs;
  std::unique_ptr<coordinator::JobRunner> job_runner;
  if (!o.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.state_dir, ec);
    MMX_ASSIGN_OR_RETURN(jobs, coordinator::JobStore::Open(o.state_dir));
    job_runner = std::make_unique<coordinator::JobRunner>(jobs.get(), &factory, &scheduler, &metrics, o.max_sequences);
  }
  std::string metrics_address;
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::MetricsHttpServer> metrics_server,
                       StartMetricsServer(o, metrics, *cluster, &metrics_address));

  coordinator::ControlService control(cluster.get(), join_token,
                                      [](const std::string& line) { std::fprintf(stderr, "mmx-coord: %s\n", line.c_str()); });
  coordinator::InferenceService::Parts parts;
  parts.cluster = cluster.get();
  parts.scheduler = &scheduler;
  parts.factory = &factory;
  parts.metrics = &metrics;
  parts.jobs = jobs.get();
  parts.job_runner = job_runner.get();
  parts.metrics_address = metrics_address;
  parts.keys = keys.get();
  coordinator::PerKeyLimit per_key(o.max_concurrent_per_key);
  parts.per_key = &per_key;
  coordinator::InferenceService inference(parts);
  std::unique_ptr<coordinator::HttpApiServer> http_api;
  if (!o.http_listen.empty()) {
    MMX_ASSIGN_OR_RETURN(http_api, StartHttpApi(o, parts, metrics, model_dir));
  }
  const size_t expected_workers =
      o.shard_config.empty() ? static_cast<size_t>(o.expect_workers) : shard.workers.size();
  absl::Status served = ServeUntilSignalled(o, *cluster, scheduler, control, inference, expected_workers,
                                            o.shard_config.empty() ? o.model_dir : shard.model, metrics_address,
                                            keys.get());
  data_plane->Shutdown();
  return served;
}

}  // namespace mmx::tools
