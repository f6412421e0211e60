// LocalCluster: a real mmx-coord and real mmx-worker processes on this machine, for integration
// tests. Writes the shard config, starts the processes (the coordinator on a loopback port the
// cluster holds for its whole life, so a restarted coordinator gets it back), and kills
// everything in its destructor, removing its directory (MMX_KEEP_TEST_CLUSTERS=1 keeps it).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "mmx/v1/inference.grpc.pb.h"
#include "tests/testing/process.h"

namespace mmx::testing {

class LocalCluster {
 public:
  // `shard_yaml` is a shard config; its worker names are started as workers. Workers start
  // before the coordinator when `workers_first` (both orders must work).
  // Processes run in `cwd` when given (a relative `model:` path resolves there). With
  // `start_workers` false only the coordinator starts (tests start workers themselves).
  // The coordinator serves with an fp32 KV cache (golden-exact) unless its arguments name a
  // --kv-dtype.
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(const std::string& shard_yaml,
                                                             bool workers_first = false,
                                                             int threads_per_worker = 1,
                                                             const std::string& cwd = "",
                                                             bool start_workers = true);
  // Start, with extra `mmx-coord serve` arguments (e.g. --state-dir, --tokenizer).
  static absl::StatusOr<std::unique_ptr<LocalCluster>> StartWith(const std::string& shard_yaml,
                                                                 std::vector<std::string> coordinator_args,
                                                                 bool workers_first = false, int threads_per_worker = 1,
                                                                 const std::string& cwd = "", bool start_workers = true);
  // Where each process runs, for clusters spread over network namespaces (tests/faults/): the
  // address the coordinator listens on and workers dial, and the argv each process is started
  // behind (e.g. `ip netns exec NS env UCX_TLS=tcp`; it must exec the program, keeping the pid).
  struct Placement {
    std::string coordinator_address;
    std::function<std::vector<std::string>(const std::string& process)> prefix;
  };
  static absl::StatusOr<std::unique_ptr<LocalCluster>> StartPlaced(const std::string& shard_yaml,
                                                                   std::vector<std::string> coordinator_args,
                                                                   Placement placement);
  // A cluster over TLS: `coordinator_args` carry --tls-cert/--tls-key (and --tls-client-ca),
  // `worker_args` go to every worker (--tls-ca, and --tls-cert/--tls-key for mutual TLS), and the
  // test's own channel uses `credentials`.
  static absl::StatusOr<std::unique_ptr<LocalCluster>> StartSecured(const std::string& shard_yaml,
                                                                    std::vector<std::string> coordinator_args,
                                                                    std::vector<std::string> worker_args,
                                                                    std::shared_ptr<grpc::ChannelCredentials> credentials);
  // The worker control plane on its own loopback port (`serve --control-listen`): workers dial
  // control_address(), the test's channel address().
  static absl::StatusOr<std::unique_ptr<LocalCluster>> StartSplitPlanes(const std::string& shard_yaml);
  // A coordinator that plans from live workers (`serve --model DIR --expect-workers N`), and N
  // workers with the given names.
  static absl::StatusOr<std::unique_ptr<LocalCluster>> StartPlanned(const std::string& model_dir,
                                                                    const std::vector<std::string>& workers,
                                                                    int threads_per_worker = 1);
  ~LocalCluster();

  const std::string& address() const { return address_; }
  // Where workers register: address() unless the planes are split.
  const std::string& control_address() const { return control_address_.empty() ? address_ : control_address_; }
  v1::Inference::Stub& stub() { return *stub_; }

  // Waits until the coordinator's health service says SERVING (the cluster is ready).
  absl::Status WaitReady(absl::Duration timeout);
  absl::StatusOr<v1::ClusterStatus> Status();
  // Waits until the coordinator reports worker `name` in `state` (asking every 20 ms: the
  // status is the coordinator's, there is no event to wait on from outside).
  absl::Status WaitWorkerState(const std::string& name, v1::WorkerState state, absl::Duration timeout);

  // kill -9 one worker (or "coordinator"); StartWorker(name) starts it again.
  void KillWorker(const std::string& name);
  // Sends `signal` to a running process (SIGSTOP / SIGCONT to freeze and wake it).
  void Signal(const std::string& name, int signal);
  // Waits for a process to exit by itself; its exit code, or an error after `timeout` (it is
  // then killed) or if it died of a signal.
  absl::StatusOr<int> WaitExit(const std::string& name, absl::Duration timeout);
  // Starts the coordinator again with the arguments it first had (after KillWorker("coordinator")).
  void StartCoordinator();
  // The directory holding the shard config and the processes' logs.
  std::string dir() const { return dir_; }
  absl::Status StartWorker(const std::string& name);
  // `mmx-worker --standby --name NAME`: holds nothing until a worker is lost.
  absl::Status StartStandby(const std::string& name);

  // The pid of a running process ("coordinator" or a worker's name), -1 if none.
  pid_t Pid(const std::string& name) const {
    const auto it = pids_.find(name);
    return it == pids_.end() ? -1 : it->second;
  }
  // What a process printed (stdout and stderr together).
  std::string Log(const std::string& name) const;

 private:
  LocalCluster() = default;
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Launch(std::unique_ptr<LocalCluster> c,
                                                              const std::string& shard_yaml,
                                                              std::vector<std::string> coordinator_args,
                                                              bool workers_first, int threads_per_worker,
                                                              const std::string& cwd, bool start_workers);
  pid_t Spawn(const std::string& name, const std::vector<std::string>& argv, const std::string& cwd);

  std::string dir_;
  std::string address_;
  int threads_ = 1;
  std::string cwd_;
  std::vector<std::string> coordinator_argv_;
  std::optional<Placement> placement_;
  std::vector<std::string> worker_args_;  // appended to every worker's command line
  std::shared_ptr<grpc::ChannelCredentials> credentials_;  // the test's channel (null: plain text)
  std::map<std::string, pid_t> pids_;
  int port_fd_ = -1;  // holds the coordinator's port for the cluster's life
  std::string control_address_;  // "" = address_
  int control_port_fd_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

// The names of the workers in a shard config text, in order.
std::vector<std::string> WorkerNames(const std::string& shard_yaml);

// Runs one Generate to completion: the tokens, their logprobs and the finish reason, or the
// RPC's status.
struct Generation {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::string finish_reason;
};
absl::StatusOr<Generation> GenerateOnce(v1::Inference::Stub& stub, const std::vector<int32_t>& prompt,
                                        int max_tokens, int logprobs = 0,
                                        absl::Duration timeout = absl::Seconds(60));

}  // namespace mmx::testing
