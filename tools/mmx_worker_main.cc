// mmx-worker: one per machine (or GPU). Holds the shard of the model the coordinator assigns
// to its name and serves it on the data plane. Every failure prints one line and exits non-zero.
#include <csignal>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "CLI/CLI.hpp"
#include "proto/join_token.h"
#include "worker/worker_process.h"

int main(int argc, char** argv) {
  // A peer that hangs up while we write (an HTTPS client: OpenSSL writes with write(2), without
  // send's MSG_NOSIGNAL) must fail that one connection with EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"mmx-worker: holds a shard of MiniMax-Text-01 and serves it to an mmx-coord cluster"};
  mmx::worker::WorkerOptions o;
  int connect_timeout_s = 120;
  app.add_option("--coordinator", o.coordinator, "Coordinator address HOST:PORT")->required();
  app.add_option("--tls-ca", o.tls.ca, "Verify the coordinator's TLS certificate against this PEM CA (TLS on)");
  app.add_option("--tls-cert", o.tls.cert, "Present this PEM certificate to the coordinator (mutual TLS)");
  app.add_option("--tls-key", o.tls.key, "The PEM private key of --tls-cert");
  std::string join_token_file;
  app.add_option("--join-token-file", join_token_file,
                 "Show the coordinator this file's token (its serve --join-token-file)");
  app.add_option("--name", o.name, "This worker's entry in the shard config")->required();
  app.add_option("--data-interface", o.data_interface,
                 "Network device(s) of the data plane, e.g. eth1 or eth1,mlx5_0:1 (default: the interface that "
                 "reaches the coordinator, and every RDMA port)");
  int64_t busy_poll_us = -1;
  app.add_option("--busy-poll-us", busy_poll_us,
                 "Microseconds a thread waiting for the data plane drives UCX itself before it sleeps; 0: sleep at "
                 "once. Default: automatic, 50 where this worker's host has a core for each worker thread, 0 where "
                 "the coordinator finds its cores shared (docs/protocol.md)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1000000}));
  app.add_option("--device", o.device,
                 "cpu (default), cuda (= cuda:0), cuda:N, or cuda:N,M,... (one worker over several GPUs, NCCL): "
                 "where this worker computes (GPUs need a CUDA build)");
  app.add_option("--threads", o.threads, "Compute threads (default: all cores)");
  app.add_option("--connect-timeout", connect_timeout_s,
                 "Seconds to keep trying to reach the coordinator at start (once registered, a worker that loses "
                 "it keeps trying until it is back)");
  app.add_flag("--standby", o.standby,
               "Register as a standby: hold nothing until a worker is lost, then take over its entry (same device "
               "kind, enough memory); --name is this worker's own name");
  bool exit_with_coordinator = false;
  app.add_flag("--exit-with-coordinator", exit_with_coordinator,
               "Exit when the coordinator's session ends, instead of waiting for it to come back");
  std::string activations = "fp32";
  app.add_option("--activations", activations, "fp32 (exact, default) or bf16 (batched GEMMs)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mmx-worker: error: %s (see mmx-worker --help)\n", e.what());
    return 2;
  }
  o.connect_timeout = absl::Seconds(connect_timeout_s);
  if (busy_poll_us >= 0) o.busy_poll = absl::Microseconds(busy_poll_us);
  o.bf16_activations = activations == "bf16";
  if (!join_token_file.empty()) {
    absl::StatusOr<std::string> token = mmx::rpc::ReadJoinTokenFile(join_token_file);
    if (!token.ok()) {
      std::fprintf(stderr, "mmx-worker: error: %s\n", std::string(token.status().message()).c_str());
      return 1;
    }
    o.join_token = *std::move(token);
  }

  // SIGTERM / SIGINT: while serving, leave gracefully (the coordinator lets the step in flight
  // finish, hands the entry to a standby if there is one, then dismisses this worker); otherwise
  // (loading, standing by, waiting for the coordinator) there is nothing to hand over: exit.
  // A second signal exits at once.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  mmx::worker::LeaveRequest leave;
  std::thread([stop_signals, &leave, name = o.name]() mutable {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (leave.Request()) {
      sigwait(&stop_signals, &sig);
      std::fprintf(stderr, "mmx-worker %s: signal %d again, exiting now\n", name.c_str(), sig);
    } else {
      std::fprintf(stderr, "mmx-worker %s: signal %d, not serving: exiting\n", name.c_str(), sig);
    }
    std::fflush(stderr);
    std::_Exit(0);
  }).detach();

  mmx::worker::ShardCache shard_cache;  // a second session for the same entry reuses the shard
  absl::Status status = mmx::worker::RunWorker(o, &leave, &shard_cache);
  // A coordinator that went away may be restarting (it keeps its jobs in --state-dir), or the
  // link to it was down (a partition; it declared this worker lost meanwhile): register again
  // when it is back, however long that takes, as a worker started before it would.
  o.connect_timeout = absl::InfiniteDuration();
  while (!exit_with_coordinator && mmx::worker::IsCoordinatorLost(status)) {
    std::fprintf(stderr, "mmx-worker %s: %s; registering again when it is back\n", o.name.c_str(),
                 std::string(status.message()).c_str());
    if (leave.requested()) return 0;  // stopped while the coordinator was away
    status = mmx::worker::RunWorker(o, &leave, &shard_cache);
  }
  if (mmx::worker::IsDismissed(status)) {
    std::fprintf(stderr, "mmx-worker %s: %s; exiting\n", o.name.c_str(), std::string(status.message()).c_str());
    return 0;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "mmx-worker %s: error: %s\n", o.name.c_str(), std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
