// LocalEngine: the distributed engine with every role in one process. A coordinator (Cluster,
// Scheduler) and one worker per shard-config entry (worker::ServeSession: the same shard loading,
// StageCompute, stage executor and expert host as mmx-worker), their control sessions in memory
// (engine/inproc_session.h) and their data plane over InprocTransport. `mmx-coord run` and
// `mmx-bench-decode` run the model through it; tests run clusters through it without processes.
//
// What it is not: a model of the network (InprocTransport copies each message once, at once).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/log.h"
#include "coordinator/cluster.h"
#include "coordinator/scheduler.h"
#include "model/config.h"
#include "plan/shard_config.h"
#include "transport/inproc_transport.h"
#include "worker/loaded_shard.h"

namespace mmx::engine {

struct LocalEngineOptions {
  std::string model_dir;
  // Who holds what. Default: one worker, "local", holding the whole model on `device`.
  std::optional<plan::ShardConfig> shard;
  std::string device = "cpu";
  std::string expert_dtype = "bf16";  // of the default shard config: bf16 or int8
  DType kv_dtype = DType::kBF16;      // of the default shard config: bf16 (as served) or fp32 (golden-exact)
  bool bf16_activations = false;      // batched GEMMs round activations to bf16 (kernels.h)
  // The scheduler serves Submit()ed requests. Off: tests drive steps on transport() themselves.
  bool start_scheduler = true;
  coordinator::SchedulerOptions scheduler;
  // The ids the tail may sample ([begin, end) pairs; empty: all), as a tokenizer would set them.
  std::vector<int32_t> sampleable_ranges;
  // The cluster's and the workers' log lines (default: none) and load progress bars.
  LogSink log = NullLog();
  bool show_progress = false;
  // Replaces how a worker places its loaded shard (tests: another StageCompute).
  std::function<absl::Status(worker::LoadedShard&, const worker::ProgressFn&)> place_shard;
};

class LocalEngine {
 public:
  // Opens and checks the checkpoint and the shard config, starts every worker, and returns once
  // the cluster is ready. A worker that fails to load fails Start with its error.
  static absl::StatusOr<std::unique_ptr<LocalEngine>> Start(LocalEngineOptions options);
  // Stops the scheduler (requests still running end UNAVAILABLE), then every worker.
  ~LocalEngine();

  const model::ModelConfig& config() const { return config_; }
  const plan::ShardConfig& shard() const { return shard_; }
  coordinator::Cluster& cluster() { return *cluster_; }
  // Only with start_scheduler.
  coordinator::Scheduler& scheduler() { return *scheduler_; }
  // The coordinator's data-plane endpoint (peer 0): steps go to the head from here, tokens
  // come back here.
  transport::Transport& transport() { return *transport_; }

 private:
  struct Member;
  LocalEngine() = default;
  absl::Status StartWorker(const plan::WorkerShard& entry);
  // Waits until the cluster is ready; the first worker error if a worker ended before.
  absl::Status WaitReady();

  LocalEngineOptions options_;
  model::ModelConfig config_;
  plan::ShardConfig shard_;
  std::shared_ptr<transport::InprocFabric> fabric_;
  std::unique_ptr<transport::InprocTransport> transport_;
  std::unique_ptr<coordinator::Cluster> cluster_;
  std::vector<std::unique_ptr<Member>> members_;
  std::unique_ptr<coordinator::Scheduler> scheduler_;

  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status worker_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::engine
