// Scheduler: continuous batching. Each iteration takes every running sequence's next tokens (a
// prefill chunk, or one decode token), packs them into one or more micro-batches, sends each
// to the head worker over the data plane and collects the sampled tokens from the tail. New
// requests join at the next iteration; finished ones leave and their state is freed in the next
// step header. If the cluster loses a worker mid-step, every request in flight ends with
// UNAVAILABLE at once (the step is void: its state on the stages is gone).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/cluster.h"
#include "coordinator/request.h"
#include "transport/transport.h"

namespace mmx::coordinator {

struct SchedulerOptions {
  int max_sequences = 32;              // running at once; more wait in the queue
  int max_queue = 1024;                // waiting; more are refused (RESOURCE_EXHAUSTED)
  int prefill_chunk = 256;             // prompt tokens per sequence per step
  // In flight per step, when there are enough sequences. 0 = automatic: 2 when there are several
  // workers with cores to themselves, else 1 (Cluster::AutomaticMicroBatches).
  int micro_batches = 0;
  int min_sequences_per_micro_batch = 4;
  absl::Duration step_timeout = absl::Seconds(60);
  absl::Duration queue_timeout = absl::Seconds(30);  // waiting for a cluster that is not ready
};

class Scheduler {
 public:
  Scheduler(Cluster* cluster, transport::Transport* transport, SchedulerOptions options);
  ~Scheduler();

  // Queues a request. RESOURCE_EXHAUSTED when the queue is full.
  absl::Status Submit(std::shared_ptr<Request> request);
  int running() const;

 private:
  struct Live {
    std::shared_ptr<Request> request;
    absl::Time queued_at;
  };
  void Loop();
  // Runs one iteration over `running`: requests that finish are finished in place, and their
  // ids appended to `freed`. An error means the step is void (the caller fails its requests).
  absl::Status Step(std::vector<Live>& running, std::vector<uint64_t>& freed);

  Cluster* const cluster_;
  transport::Transport* const transport_;
  const SchedulerOptions options_;

  mutable absl::Mutex mu_;
  std::deque<Live> queue_ ABSL_GUARDED_BY(mu_);
  int running_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_step_ = 1;
  std::thread thread_;
};

}  // namespace mmx::coordinator
