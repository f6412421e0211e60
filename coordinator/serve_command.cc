#include "coordinator/serve_command.h"

#include <signal.h>

#include <cstdio>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "coordinator/cluster.h"
#include "coordinator/control_service.h"
#include "coordinator/inference_service.h"
#include "coordinator/scheduler.h"
#include "grpcpp/grpcpp.h"
#include "model/checkpoint.h"
#include "model/checkpoint_fingerprint.h"
#include "plan/shard_config.h"
#include "transport/ucx_transport.h"

namespace mmx::coordinator {

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
  serve->add_option("--listen", o->listen, "gRPC address for workers and clients (HOST:PORT; port 0 = any)");
  serve->add_option("--max-sequences", o->max_sequences, "Sequences running at once");
  serve->add_option("--prefill-chunk", o->prefill_chunk, "Prompt tokens per sequence per step");
  serve->add_option("--micro-batches", o->micro_batches,
                    "Micro-batches in flight per step when there are enough sequences; 0 = automatic: 2, or 1 "
                    "with one worker or when workers share a host's cores (nothing could overlap)")
      ->check(CLI::Range(0, 16));
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
    for (const std::string& r : DescribeRoles(w)) roles += " " + r;
    std::printf("  %-16s %-6s%s\n", w.name.c_str(), w.device.c_str(), roles.c_str());
  }
  return absl::OkStatus();
}

absl::Status Serve(const ServeOptions& o) {
  if (o.shard_config.empty() && o.model_dir.empty()) {
    return absl::InvalidArgumentError("give --shard-config FILE, or --model DIR --expect-workers N to plan from live workers");
  }
  plan::ShardConfig shard;
  std::unique_ptr<model::Checkpoint> checkpoint;
  if (!o.shard_config.empty()) {
    MMX_RETURN_IF_ERROR(LoadAndCheck(o.shard_config, &shard, &checkpoint));
  } else {
    MMX_ASSIGN_OR_RETURN(checkpoint, model::Checkpoint::Open(o.model_dir));
    MMX_RETURN_IF_ERROR(checkpoint->ValidateAgainstConfig());
  }
  const std::string fingerprint = model::CheckpointFingerprint(*checkpoint);

  std::random_device rd;
  const uint64_t token = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  transport::TransportOptions topts;
  topts.self = 0;
  topts.cluster_token = token;
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<transport::UcxTransport> data_plane, transport::UcxTransport::Create(topts));

  std::unique_ptr<Cluster> cluster_owner;
  if (!o.shard_config.empty()) {
    cluster_owner = std::make_unique<Cluster>(shard, checkpoint->config(), fingerprint, data_plane.get(), token);
  } else {
    Cluster::LivePlanning planning;
    planning.model_dir = o.model_dir;
    planning.expect_workers = o.expect_workers;
    planning.serving.max_sequences = o.max_sequences;
    if (o.max_context > 0) planning.serving.max_context = o.max_context;
    cluster_owner = std::make_unique<Cluster>(planning, checkpoint->config(), fingerprint, data_plane.get(), token);
  }
  Cluster& cluster = *cluster_owner;
  SchedulerOptions sopts;
  sopts.max_sequences = o.max_sequences;
  sopts.prefill_chunk = o.prefill_chunk;
  sopts.micro_batches = o.micro_batches;
  Scheduler scheduler(&cluster, data_plane.get(), sopts);
  ControlService control(&cluster);
  InferenceService inference(&cluster, &scheduler);

  // Block the stop signals before gRPC starts its threads, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&control);
  builder.RegisterService(&inference);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen, " (address in use or not local?)"));
  }
  const std::string host = o.listen.substr(0, o.listen.rfind(':'));
  std::printf("mmx-coord: listening on %s:%d, waiting for %zu workers (model %s)\n", host.c_str(), port,
              o.shard_config.empty() ? static_cast<size_t>(o.expect_workers) : shard.workers.size(),
              o.shard_config.empty() ? o.model_dir.c_str() : shard.model.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "mmx-coord: signal %d, shutting down\n", sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  data_plane->Shutdown();
  return absl::OkStatus();
}

}  // namespace mmx::coordinator
