// The life of one worker inside its control session, whatever carries the session: register by
// name, receive the assignment, load only the shard (progress to the log and the coordinator),
// create the data-plane endpoint, report ready, apply peer tables, and serve steps and expert
// dispatches until the session ends. mmx-worker runs it over gRPC and UCX
// (worker/worker_process.h); `mmx-coord run` and the tests run it in memory over InprocTransport,
// next to the coordinator in the same process (engine/local_engine.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "proto/tls_credentials.h"
#include "transport/transport.h"
#include "worker/control_session.h"
#include "worker/leave_request.h"
#include "worker/loaded_shard.h"

namespace mmx::worker {

struct WorkerOptions {
  std::string coordinator;   // HOST:PORT (a worker process's gRPC session)
  rpc::ClientTlsFiles tls;   // --tls-ca (--tls-cert, --tls-key): the session over TLS
  std::string join_token;    // shown to the coordinator (--join-token-file); "" = none
  // The network devices of the data plane (--data-interface; UCX_NET_DEVICES syntax). "" = the
  // interface that reaches the coordinator, and the machine's RDMA ports.
  std::string data_interface;
  // How long a thread waiting on the data plane drives UCX itself before it sleeps
  // (--busy-poll-us; transport/ucx_worker.h). 0: sleep at once, leaving the cores to compute.
  // nullopt: automatic (AutomaticBusyPoll), from each peer table.
  std::optional<absl::Duration> busy_poll;
  std::string name;
  // Register without claiming an entry; take a lost worker's entry when the coordinator gives one.
  bool standby = false;
  std::string device = "cpu";
  int threads = 0;           // 0 = all cores
  bool bf16_activations = false;  // batched GEMMs round activations to bf16 (kernels.h)
  absl::Duration connect_timeout = absl::Seconds(120);
  absl::Duration reply_timeout = absl::Seconds(30);
};

// The shard a worker process loaded, kept across its sessions: registering again for the same
// entry of the same model (its coordinator restarted, or it was declared lost while frozen or
// cut off) reuses it instead of reading the weights again.
struct ShardCache {
  std::string key;  // model, entry, expert dtype, device: what the shard was loaded for
  std::unique_ptr<LoadedShard> shard;
};

// What differs between a worker process and a worker embedded in another program.
struct WorkerEnvironment {
  // The data-plane endpoint, made once the assignment gave this worker its peer id and the
  // cluster token.
  std::function<absl::StatusOr<std::unique_ptr<transport::Transport>>(const transport::TransportOptions&)>
      make_transport;
  LogSink log = StderrLog();
  bool show_progress = true;  // load and upload progress bars on stderr
  bool measure_host = true;   // measure memory bandwidth for the planner (64 MiB scanned)
  // Places the loaded shard's computation (default: PlaceShard on the worker's device). Tests
  // put another StageCompute here, e.g. the ranked one over CPU threads.
  std::function<absl::Status(LoadedShard&, const ProgressFn&)> place_shard;
  // SIGTERM, for a worker process: while serving, a request sends Leaving (may be null).
  LeaveRequest* leave = nullptr;
  // Kept across sessions (may be null: load each time).
  ShardCache* shard_cache = nullptr;
};

// Runs the session to its end. Returns an error that says what went wrong: rejected
// registration, failed load, or the coordinator lost (IsCoordinatorLost).
// The automatic busy-poll: kAutomaticBusyPoll where this worker's host has a core for each of
// its workers' threads, 0 where the coordinator found it shared (Peer.shares_cores): there the
// spinning takes the cores another worker computes on (docs/benchmarks.md, issue 17). A table
// without this worker leaves it 0.
inline constexpr absl::Duration kAutomaticBusyPoll = absl::Microseconds(50);
absl::Duration AutomaticBusyPoll(const v1::PeerTable& table, uint32_t self);

absl::Status ServeSession(const WorkerOptions& options, ControlSession& session, const WorkerEnvironment& env);

// The session ended after the worker was serving: the coordinator exited or was killed.
bool IsCoordinatorLost(const absl::Status& status);
// The coordinator dismissed the worker after it asked to leave (SIGTERM): exit, successfully.
bool IsDismissed(const absl::Status& status);

}  // namespace mmx::worker
