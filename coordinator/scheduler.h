// Scheduler: continuous batching with several steps in flight. The running sequences are split
// into waves (coordinator/waves.h); each wave's step is planned over its sequences
// (coordinator/step_planner.h: decode tokens first, then prompt chunks within a token budget,
// split into micro-batches) and sent to its group's head worker, and up to steps_in_flight waves have a
// step out at once (coordinator/steps_in_flight.h), each wave's next step leaving as soon as its
// tokens are back (coordinator/step_results.h applies them). With S attention stages in a row, S
// steps in flight keep every stage busy where one would leave each idle (S-1)/S of the time; a
// sequence has at most one step out, so stages never see one sequence twice at once. New
// requests join at the next step of the wave with the fewest tokens; finished ones leave and
// their state is freed in the next step header (never while a step of theirs is out).
//
// Admission (coordinator/admission.h): at most max_sequences running; each admitted request
// reserves the sequence-state memory it may need on every attention stage (state_budget.h), and
// waits while a stage is full; beyond max_queue waiting requests, Submit refuses with
// RESOURCE_EXHAUSTED. Interactive requests come first (waiting_room.h): job requests hold at
// most max_job_share of the running sequences, and an interactive request that finds no slot
// or state preempts job requests with no step out (their state freed, replayed when they run
// again), so it joins a step at once. While an interactive prompt is prefilled, jobs' sequences
// sit out of its wave's steps (step_planner.h).
//
// The loop sleeps when there is nothing to run and wakes on events: a reply, a submit, a cancel,
// the cluster becoming ready or losing a worker, or a waiting request's deadline.
//
// Failover: a lost worker (a new cluster epoch) wakes the loop at once; every step out is void
// and every running sequence's state on the stages is gone. The sequences pause; once the
// cluster is whole again (the worker back, or a standby in its place) each is rebuilt by
// prefilling its prompt and the tokens it generated, in chunks like any prompt (the planner's
// replay), and goes on: the client's stream only pauses, and its tokens are the ones it would
// have got (sampling draws depend only on seed and position, model/sampling.h). A sequence
// paused longer than failover_timeout ends UNAVAILABLE naming the lost worker; with a timeout
// of zero every running request ends so at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/wake_flag.h"
#include "coordinator/admission.h"
#include "coordinator/cluster.h"
#include "coordinator/metrics.h"
#include "coordinator/request.h"
#include "coordinator/state_budget.h"
#include "coordinator/step_codec.h"
#include "coordinator/step_planner.h"
#include "coordinator/steps_in_flight.h"
#include "coordinator/waiting_room.h"
#include "transport/transport.h"

namespace mmx::coordinator {

// Sequences whose state the workers may drop, by attention group: each goes out in a header of
// its group's next step, since only that group's stages hold it.
using PendingFrees = std::map<std::string, std::vector<uint64_t>>;

// One step as it went: what it carried and how long it took from sending its first micro-batch
// to the last micro-batch's tokens.
struct StepReport {
  uint64_t step_id = 0;
  int wave = 0;
  int steps_in_flight = 0;        // out at once when it was sent, itself included
  int num_sequences = 0;
  int64_t num_tokens = 0;         // prompt chunk tokens plus decode tokens
  int64_t num_prompt_tokens = 0;
  double seconds = 0;
  int64_t weight_bytes = 0;       // weight bytes the workers read for it (each tensor once per micro-batch)
};

struct SchedulerOptions {
  int max_sequences = 32;              // running at once (--max-concurrent); more wait in the queue
  int max_queue = 1024;                // waiting (--max-queue); more are refused (RESOURCE_EXHAUSTED)
  double max_job_share = 0.75;         // of max_sequences, job requests may hold (--max-job-share)
  int prefill_chunk = 256;             // prompt tokens per sequence per step
  int max_step_tokens = 1024;          // tokens per step, decode first
  // In flight per step, when there are enough sequences. 0 = automatic: 2 when there are several
  // workers with cores to themselves, else 1 (Cluster::AutomaticMicroBatches).
  int micro_batches = 0;
  int min_sequences_per_micro_batch = 4;
  // Waves with a step out at once per attention group (--steps-in-flight). 0 = automatic: one
  // per attention stage in a row (Cluster::AutomaticStepsInFlight), so that each has a step to
  // work on.
  int steps_in_flight = 0;
  absl::Duration step_timeout = absl::Seconds(60);
  absl::Duration queue_timeout = absl::Seconds(30);  // waiting for a cluster that is not ready
  // How long running sequences stay paused after a worker is lost (--failover-timeout).
  absl::Duration failover_timeout = absl::Seconds(300);
  // Where failovers are logged (paused, resumed); null: not logged.
  LogSink log;
  // Called on the scheduler's thread after each step that completed (benchmarks).
  std::function<void(const StepReport&)> on_step;
};

class Scheduler {
 public:
  // `metrics` may be null.
  Scheduler(Cluster* cluster, transport::Transport* transport, SchedulerOptions options, Metrics* metrics = nullptr);
  // Fails every running and waiting request with UNAVAILABLE.
  ~Scheduler();

  // Queues a request. RESOURCE_EXHAUSTED when the queue is full.
  absl::Status Submit(std::shared_ptr<Request> request);
  // Stops admitting (a coordinator shutting down): waiting requests and later Submits end
  // UNAVAILABLE with `why`; running ones go on. WaitIdle then waits (up to `timeout`) for them
  // to end; false if some are still running.
  void Drain(const std::string& why);
  bool draining() const;
  bool WaitIdle(absl::Duration timeout);
  int running() const;
  int queued() const;
  // The waves in use, all groups together (steps_in_flight per group, or the automatic number
  // once the cluster was ready).
  int steps_in_flight_limit() const;

 private:
  // The cluster as the loop sees it at the top of an iteration.
  using ClusterView = Cluster::Moment;

  void Loop();
  // Rebuilds the state budget for a new epoch, the running requests holding their places first.
  ClusterView ViewCluster(const std::vector<ScheduledRequest>& running);
  // The running sequences' state is gone (a new epoch): pauses them for their replay, or ends
  // them all when failover is off.
  void LoseState(std::vector<ScheduledRequest>& running, PendingFrees& freed, const ClusterView& view);
  // While the cluster is not ready: ends the sequences paused longer than failover_timeout.
  // Returns when the next one will have.
  absl::Time ExpirePaused(std::vector<ScheduledRequest>& running, const ClusterView& view);
  // A step failed UNAVAILABLE or DEADLINE_EXCEEDED in epoch `view.epoch` (a peer unreachable or
  // silent, or no tokens in time):
  // often a worker the control plane has not declared lost yet. Waits up to the heartbeat
  // timeout for that; if the epoch is still the same, resets the sequences (a new epoch with
  // the same workers). Either way the loop then replays them.
  void AwaitLossOrReset(const ClusterView& view, const absl::Status& failure);
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }
  // Drops requests that ended (their state is freed with the next step), then admits waiting
  // ones (cluster ready) or expires them (not ready). Returns when the loop must look again
  // without being woken.
  absl::Time Housekeep(std::vector<ScheduledRequest>& running, PendingFrees& freed, const ClusterView& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Admits waiting requests into `running`, preempting job requests for interactive ones.
  std::vector<Refusal> Admit(std::vector<ScheduledRequest>& running, PendingFrees& freed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The number of waves for this cluster (once it is ready: its automatic count is known then):
  // waves_per_group_ for each attention group, group g's being [g * waves_per_group_, ...).
  void CountWaves();
  // The index of `group` in groups_ (0 for a name it does not know).
  int GroupIndex(const std::string& group) const;
  // Each running request's place in a wave.
  void AssignWaves(std::vector<ScheduledRequest>& running);
  // Plans and sends the next step of every wave that has none out. An error: a send failed.
  absl::Status LaunchSteps(std::vector<ScheduledRequest>& running, PendingFrees& freed, const ClusterView& view);
  // Waits (until a reply, a wake or `look_again`) for the steps out, and applies a step whose
  // replies are all in. An error: a peer unreachable or silent, or a step overdue.
  absl::Status AwaitSteps(absl::Time look_again, PendingFrees& freed);
  // Applies a step's results; its requests whose micro-batch failed end with that error. Frees
  // the step carried that did not reach every stage go out again in `freed`.
  void FinishStep(StepsInFlight::Step& step, PendingFrees& freed);
  void Report(const StepsInFlight::Step& step, double seconds);
  // Ends every running request with `status`, releasing its state.
  void FailAll(std::vector<ScheduledRequest>& running, PendingFrees& freed, const absl::Status& status);
  void Ended(const std::string& outcome);  // metrics

  Cluster* const cluster_;
  const SchedulerOptions options_;
  Metrics* const metrics_;
  const std::shared_ptr<WakeFlag> waker_ = std::make_shared<WakeFlag>();
  uint64_t subscription_ = 0;

  mutable absl::Mutex mu_;
  WaitingRoom waiting_ ABSL_GUARDED_BY(mu_);
  int running_count_ ABSL_GUARDED_BY(mu_) = 0;
  int waves_shown_ ABSL_GUARDED_BY(mu_) = 0;  // waves_, for other threads
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::string draining_ ABSL_GUARDED_BY(mu_);  // why Submit refuses, once draining

  // Loop thread only. The budget is rebuilt from the cluster's stages for each epoch.
  std::unique_ptr<StateBudget> budget_;
  uint64_t budget_epoch_ = 0;
  uint64_t state_epoch_ = 0;  // the epoch the running sequences' state was built in
  absl::Time lost_at_ = absl::InfiniteFuture();  // a failover in progress: when state was lost
  uint64_t next_step_ = 1;
  StepsInFlight steps_;
  int waves_ = 1;  // all groups together
  int waves_per_group_ = 1;
  std::vector<std::string> groups_{""};
  bool waves_counted_ = false;
  std::thread thread_;
};

}  // namespace mmx::coordinator
