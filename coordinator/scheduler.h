// Scheduler: continuous batching. Each iteration takes every running sequence's next tokens,
// packs them into one or more micro-batches, sends each to the head worker over the data plane
// and collects the sampled tokens from the tail. New requests join at the next iteration;
// finished ones leave and their state is freed in the next step header.
//
// A step holds at most max_step_tokens tokens: every decoding sequence's next token first,
// then prompt chunks (at most prefill_chunk per sequence) in admission order, so long prompts
// are prefilled a chunk at a time between decode steps instead of stalling them.
// Admission: at most max_sequences running; each admitted request reserves the sequence-state
// memory it may need on every attention stage (state_budget.h), and waits while a stage is
// full; beyond max_queue waiting requests, Submit refuses with RESOURCE_EXHAUSTED. The waiting
// room is fair: round-robin over sources (Generate callers, each batch job; fair_queue.h).
// If the cluster loses a worker mid-step, every request in flight ends with UNAVAILABLE at
// once (the step is void: its state on the stages is gone).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/cluster.h"
#include "coordinator/fair_queue.h"
#include "coordinator/metrics.h"
#include "coordinator/request.h"
#include "coordinator/state_budget.h"
#include "transport/transport.h"

namespace mmx::coordinator {

// One step as it went: what it carried and how long it took from sending its first micro-batch
// to the last micro-batch's tokens.
struct StepReport {
  uint64_t step_id = 0;
  int num_sequences = 0;
  int64_t num_tokens = 0;         // prompt chunk tokens plus decode tokens
  int64_t num_prompt_tokens = 0;
  double seconds = 0;
  int64_t weight_bytes = 0;       // weight bytes the workers read for it (each tensor once per micro-batch)
};

struct SchedulerOptions {
  int max_sequences = 32;              // running at once (--max-concurrent); more wait in the queue
  int max_queue = 1024;                // waiting (--max-queue); more are refused (RESOURCE_EXHAUSTED)
  int prefill_chunk = 256;             // prompt tokens per sequence per step
  int max_step_tokens = 1024;          // tokens per step, decode first
  // In flight per step, when there are enough sequences. 0 = automatic: 2 when there are several
  // workers with cores to themselves, else 1 (Cluster::AutomaticMicroBatches).
  int micro_batches = 0;
  int min_sequences_per_micro_batch = 4;
  absl::Duration step_timeout = absl::Seconds(60);
  absl::Duration queue_timeout = absl::Seconds(30);  // waiting for a cluster that is not ready
  // Called on the scheduler's thread after each step that completed (benchmarks).
  std::function<void(const StepReport&)> on_step;
};

class Scheduler {
 public:
  // `metrics` may be null.
  Scheduler(Cluster* cluster, transport::Transport* transport, SchedulerOptions options, Metrics* metrics = nullptr);
  ~Scheduler();

  // Queues a request. RESOURCE_EXHAUSTED when the queue is full.
  absl::Status Submit(std::shared_ptr<Request> request);
  int running() const;
  int queued() const;

 private:
  struct Live {
    std::shared_ptr<Request> request;
    absl::Time queued_at;
    absl::Time last_token_at = absl::InfinitePast();
  };
  void Loop();
  // Admits waiting requests into `running` (under mu_).
  void Admit(std::vector<Live>& running) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs one iteration over `running`: requests that finish are finished in place. An error
  // means the step is void (the caller fails its requests).
  absl::Status Step(std::vector<Live>& running, std::vector<uint64_t>& freed);
  void Ended(const std::string& outcome);  // metrics

  Cluster* const cluster_;
  transport::Transport* const transport_;
  const SchedulerOptions options_;
  Metrics* const metrics_;

  mutable absl::Mutex mu_;
  FairQueue<Live> queue_ ABSL_GUARDED_BY(mu_);
  int running_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Rebuilt from the cluster's stages whenever it becomes ready again (a new epoch).
  std::unique_ptr<StateBudget> budget_ ABSL_GUARDED_BY(mu_);
  uint64_t budget_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_step_ = 1;
  std::thread thread_;
};

}  // namespace mmx::coordinator
