#include "coordinator/scheduler.h"

#include <map>
#include <stop_token>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "coordinator/step_client.h"
#include "coordinator/step_results.h"

namespace mmx::coordinator {

// The cluster listener's state (it outlives neither the listener nor the scheduler's loop): a
// stop source per cluster epoch, whose stop wakes a step waiting on a lost worker.
struct Scheduler::EpochWatch {
  absl::Mutex mu;
  uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
  std::stop_source source ABSL_GUARDED_BY(mu);
};

namespace {

// One sequence's part of the step, from its request and the plan.
SequenceStep ToSequenceStep(const Request& r, const PlannedSequence& p) {
  SequenceStep s;
  s.sequence_id = r.id();
  s.start_position = p.start_position;
  // Context tokens: a prompt chunk, a replay chunk (prompt and generated tokens), or the last
  // sampled token.
  for (int64_t i = p.start_position; i < p.start_position + p.num_tokens; ++i) s.tokens.push_back(r.context_token(i));
  s.sample = p.sample;
  s.return_logits = r.params().return_logits;
  s.sampling = r.params().sampling;
  s.logprobs = r.params().logprobs;
  return s;
}

}  // namespace

Scheduler::Scheduler(Cluster* cluster, transport::Transport* transport, SchedulerOptions options, Metrics* metrics)
    : cluster_(cluster), transport_(transport), options_(std::move(options)), metrics_(metrics),
      watch_(std::make_shared<EpochWatch>()) {
  subscription_ = cluster_->Subscribe([watch = watch_, waker = waker_](bool, uint64_t epoch) {
    {
      absl::MutexLock lock(&watch->mu);
      if (epoch != watch->epoch) {
        watch->source.request_stop();  // a step of the old epoch waits for nothing more
        watch->source = std::stop_source();
        watch->epoch = epoch;
      }
    }
    waker->Wake();
  });
  const uint64_t epoch = cluster_->epoch();
  {
    absl::MutexLock lock(&watch_->mu);
    if (watch_->epoch == 0) watch_->epoch = epoch;
  }
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  waker_->Wake();
  thread_.join();
  cluster_->Unsubscribe(subscription_);
}

void Scheduler::Drain(const std::string& why) {
  {
    absl::MutexLock lock(&mu_);
    draining_ = why;
    waiting_.RemoveIf([](const ScheduledRequest&) { return true; },
                    [&](ScheduledRequest& s) {
                      s.request->Fail(absl::UnavailableError(why));
                      Ended("error");
                    });
    if (metrics_) metrics_->SetQueueDepth(0);
  }
  waker_->Wake();
}

bool Scheduler::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_count_ == 0 && waiting_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

absl::Status Scheduler::Submit(std::shared_ptr<Request> request) {
  {
    absl::MutexLock lock(&mu_);
    if (!draining_.empty()) return absl::UnavailableError(draining_);
    if (static_cast<int>(waiting_.size()) >= options_.max_queue) {
      return absl::ResourceExhaustedError(absl::StrCat("the queue is full (", options_.max_queue,
                                                       " requests waiting, --max-queue); retry later"));
    }
    request->SetCancelListener([waker = waker_] { waker->Wake(); });
    waiting_.Push(ScheduledRequest{std::move(request), absl::Now()});
    if (metrics_) metrics_->SetQueueDepth(static_cast<int>(waiting_.size()));
  }
  waker_->Wake();
  return absl::OkStatus();
}

int Scheduler::running() const {
  absl::MutexLock lock(&mu_);
  return running_count_;
}

int Scheduler::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiting_.size());
}

void Scheduler::Ended(const std::string& outcome) {
  if (metrics_) metrics_->RequestEnded(outcome);
}

Scheduler::ClusterView Scheduler::ViewCluster(const std::vector<ScheduledRequest>& running) {
  const ClusterView view = cluster_->Now();
  if (view.ready && (!budget_ || budget_epoch_ != view.epoch)) {
    std::vector<StageMemory> stages;
    for (const Cluster::Stage& s : cluster_->Stages()) stages.push_back({s.worker, s.begin, s.end, s.state_memory_bytes});
    budget_ = std::make_unique<StateBudget>(cluster_->config(), std::move(stages));
    budget_epoch_ = view.epoch;
    for (const ScheduledRequest& s : running) budget_->Hold(s.request->id(), s.request->params().max_positions());
  }
  return view;
}

void Scheduler::LoseState(std::vector<ScheduledRequest>& running, std::vector<uint64_t>& freed, const ClusterView& view) {
  freed.clear();  // whatever they named went with the old peer table
  std::vector<ScheduledRequest*> lost;
  for (ScheduledRequest& s : running) {
    if (s.request->sent_first_step) lost.push_back(&s);
  }
  if (lost.empty()) return;
  const std::string cause = view.last_loss.empty() ? view.not_ready_reason : view.last_loss;
  if (options_.failover_timeout <= absl::ZeroDuration()) {
    FailAll(running, freed, absl::UnavailableError(absl::StrCat(cause, " (--failover-timeout 0: not waiting for it)")));
    freed.clear();
    return;
  }
  const absl::Time now = absl::Now();
  for (ScheduledRequest* s : lost) {
    Request& r = *s->request;
    r.ForgetState();
    r.paused_at = std::min(r.paused_at, now);
  }
  if (lost_at_ == absl::InfiniteFuture()) lost_at_ = now;
  if (metrics_) metrics_->Failover();
  Log(absl::StrCat("failover: ", lost.size(), " running sequences paused (", cause,
                   "); they are replayed once the cluster is whole again, or end after --failover-timeout ",
                   absl::FormatDuration(options_.failover_timeout)));
}

void Scheduler::AwaitLossOrReset(const ClusterView& view, const absl::Status& failure) {
  const absl::Time give_up = absl::Now() + cluster_->heartbeat_timeout();
  auto stopping = [this] {
    absl::MutexLock lock(&mu_);
    return stop_;
  };
  while (cluster_->epoch() == view.epoch && absl::Now() < give_up && !stopping()) waker_->WaitUntil(give_up);
  if (cluster_->epoch() == view.epoch && !stopping()) {
    cluster_->ResetSequences(absl::StrCat("a step failed and no worker was lost: ", failure.message()));
  }
}

absl::Time Scheduler::ExpirePaused(std::vector<ScheduledRequest>& running, const ClusterView& view) {
  const absl::Time now = absl::Now();
  absl::Time next = absl::InfiniteFuture();
  for (ScheduledRequest& s : running) {
    Request& r = *s.request;
    if (r.done() || r.paused_at == absl::InfiniteFuture()) continue;
    const absl::Time deadline = r.paused_at + options_.failover_timeout;
    if (deadline > now) {
      next = std::min(next, deadline);
      continue;
    }
    r.Fail(absl::UnavailableError(absl::StrCat("paused ", absl::FormatDuration(options_.failover_timeout),
                                               " (--failover-timeout) after ", view.last_loss.empty() ? "a worker was lost" : view.last_loss,
                                               "; ", view.not_ready_reason)));
    Ended("error");
  }
  return next;
}

absl::Time Scheduler::Housekeep(std::vector<ScheduledRequest>& running, std::vector<uint64_t>& freed,
                                const ClusterView& view) {
  // Cancelled requests leave now; their state goes with the next step header.
  for (ScheduledRequest& s : running) {
    if (s.request->cancelled() && !s.request->done()) {
      s.request->Fail(absl::CancelledError("cancelled by the client"));
      Ended("cancelled");
    }
  }
  for (auto it = running.begin(); it != running.end();) {
    if (!it->request->done()) {
      ++it;
      continue;
    }
    if (it->request->sent_first_step) freed.push_back(it->request->id());
    if (budget_) budget_->Release(it->request->id());
    it = running.erase(it);
  }
  absl::Time look_again = absl::InfiniteFuture();
  std::vector<Refusal> refused;
  if (view.ready) {
    refused = Admit(running, freed);
  } else {
    // Waiting requests get a bounded wait for the cluster, then a clear UNAVAILABLE.
    refused = ExpireWaiting(waiting_, absl::Now(), options_.queue_timeout, view.not_ready_reason);
    look_again = NextExpiry(waiting_, options_.queue_timeout);
  }
  for (Refusal& r : refused) {
    r.entry.request->Fail(r.status);
    Ended(absl::IsCancelled(r.status) ? "cancelled" : "error");
  }
  running_count_ = static_cast<int>(running.size());
  if (metrics_) {
    int paused = 0;
    for (const ScheduledRequest& s : running) paused += s.request->paused_at != absl::InfiniteFuture();
    metrics_->SetQueueDepth(static_cast<int>(waiting_.size()));
    metrics_->SetRunning(running_count_);
    metrics_->SetPaused(paused);
  }
  // What a standby taking over a stage must have room for.
  if (budget_) cluster_->SetReservedState(budget_->reserved_by_worker());
  return look_again;
}

std::vector<Refusal> Scheduler::Admit(std::vector<ScheduledRequest>& running, std::vector<uint64_t>& freed) {
  int jobs_running = 0;
  for (const ScheduledRequest& s : running) jobs_running += !s.request->params().interactive();
  AdmissionRoom room;
  room.slots = options_.max_sequences - static_cast<int>(running.size());
  room.job_slots = JobSlots(options_.max_sequences, options_.max_job_share) - jobs_running;
  // The victim: the job request with the least state to rebuild. It rejoins the waiting room
  // after this admission, so it cannot take back the slot it just gave up.
  std::vector<ScheduledRequest> preempted;
  auto preempt = [&]() {
    auto victim = running.end();
    for (auto it = running.begin(); it != running.end(); ++it) {
      const Request& r = *it->request;
      if (r.params().interactive() || r.done()) continue;
      if (victim == running.end() || r.processed < victim->request->processed) victim = it;
    }
    if (victim == running.end()) return false;
    Request& r = *victim->request;
    if (r.sent_first_step) freed.push_back(r.id());
    budget_->Release(r.id());
    r.ForgetState();
    victim->queued_at = absl::Now();
    preempted.push_back(std::move(*victim));
    running.erase(victim);
    if (metrics_) metrics_->Preempted();
    return true;
  };
  Admitted admitted = AdmitWaiting(waiting_, *budget_, room, preempt);
  for (ScheduledRequest& s : admitted.admitted) running.push_back(std::move(s));
  for (auto it = preempted.rbegin(); it != preempted.rend(); ++it) waiting_.PushFront(std::move(*it));
  return std::move(admitted.refused);
}

void Scheduler::FailAll(std::vector<ScheduledRequest>& running, std::vector<uint64_t>& freed,
                        const absl::Status& status) {
  for (ScheduledRequest& s : running) {
    if (!s.request->done()) Ended("error");
    s.request->Fail(status);
    if (s.request->sent_first_step) freed.push_back(s.request->id());
    if (budget_) budget_->Release(s.request->id());
  }
  running.clear();
  absl::MutexLock lock(&mu_);
  running_count_ = 0;
}

void Scheduler::Loop() {
  std::vector<ScheduledRequest> running;
  std::vector<uint64_t> freed;
  state_epoch_ = cluster_->epoch();
  while (true) {
    cluster_->Quiescent();  // no step in flight here: workers waiting to stop may go
    const ClusterView view = ViewCluster(running);
    if (view.epoch != state_epoch_) {
      LoseState(running, freed, view);
      state_epoch_ = view.epoch;
    }
    absl::Time look_again;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      look_again = Housekeep(running, freed, view);
    }
    if (running.empty()) {
      lost_at_ = absl::InfiniteFuture();
      waker_->WaitUntil(look_again);
      continue;
    }
    if (!view.ready) {
      look_again = std::min(look_again, ExpirePaused(running, view));
      waker_->WaitUntil(look_again);
      continue;
    }
    if (lost_at_ != absl::InfiniteFuture()) {
      int64_t replay = 0;
      for (const ScheduledRequest& s : running) replay += s.request->replay_until - s.request->processed;
      Log(absl::StrCat("failover: cluster whole again after ", absl::FormatDuration(absl::Now() - lost_at_), "; replaying ",
                       running.size(), " sequences (", replay, " tokens)"));
      lost_at_ = absl::InfiniteFuture();
    }
    absl::Status status = RunStep(running, freed, view);
    // A worker lost during the step: the top of the loop sees the new epoch and pauses them.
    if (status.ok() || cluster_->epoch() != view.epoch) continue;
    // A peer unreachable or silent (UCX's endpoint timeout is DEADLINE_EXCEEDED).
    const bool peer_trouble = absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
    if (peer_trouble && options_.failover_timeout > absl::ZeroDuration()) {
      AwaitLossOrReset(view, status);
      continue;
    }
    FailAll(running, freed, status);
  }
  FailAll(running, freed, absl::UnavailableError("the coordinator is shutting down"));
  absl::MutexLock lock(&mu_);
  waiting_.RemoveIf([](const ScheduledRequest&) { return true; },
                  [](ScheduledRequest& s) { s.request->Fail(absl::UnavailableError("the coordinator is shutting down")); });
}

absl::Status Scheduler::RunStep(std::vector<ScheduledRequest>& running, std::vector<uint64_t>& freed,
                                const ClusterView& view) {
  std::stop_token epoch_ended;
  {
    absl::MutexLock lock(&watch_->mu);
    if (watch_->epoch != view.epoch) return absl::OkStatus();  // the loop looks again
    epoch_ended = watch_->source.get_token();
  }
  std::vector<SequenceProgress> progress;
  for (const ScheduledRequest& s : running) {
    const Request& r = *s.request;
    progress.push_back({static_cast<int64_t>(r.params().prompt.size()), static_cast<int64_t>(r.output.size()),
                        r.processed, r.params().interactive()});
  }
  StepLimits limits;
  limits.prefill_chunk = options_.prefill_chunk;
  limits.max_step_tokens = options_.max_step_tokens;
  limits.micro_batches = options_.micro_batches > 0 ? options_.micro_batches : cluster_->AutomaticMicroBatches();
  limits.min_sequences_per_micro_batch = options_.min_sequences_per_micro_batch;
  const StepPlan plan = PlanStep(progress, limits);
  if (plan.empty()) return absl::OkStatus();

  const uint64_t step_id = next_step_++;
  const uint32_t count = static_cast<uint32_t>(plan.micro_batches.size());
  std::vector<OutgoingMicroBatch> outgoing;
  std::vector<std::vector<ScheduledRequest*>> members(count);
  for (uint32_t m = 0; m < count; ++m) {
    std::vector<SequenceStep> sequences;
    for (const PlannedSequence& p : plan.micro_batches[m]) {
      ScheduledRequest& s = running[p.index];
      sequences.push_back(ToSequenceStep(*s.request, p));
      members[m].push_back(&s);
      s.request->sent_first_step = true;
    }
    outgoing.push_back(EncodeMicroBatch(step_id, m, count, sequences, m == 0 ? freed : std::vector<uint64_t>{}));
    outgoing.back().header.set_sequence_epoch(view.epoch);
  }
  freed.clear();

  const model::ModelConfig& config = cluster_->config();
  StepClient client(transport_, transport::WireLimits{config.hidden_size, config.vocab_size,
                                                      config.num_hidden_layers, config.num_local_experts});
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<MicroBatchResult>> results =
      client.Run(cluster_->head(), outgoing, options_.step_timeout, epoch_ended);
  if (!results.ok()) {
    // A worker was lost during the step: say which, rather than that the wait was stopped.
    if (epoch_ended.stop_requested()) return absl::UnavailableError(cluster_->NotReadyReason());
    return results.status();
  }
  const absl::Time now = absl::Now();
  for (uint32_t m = 0; m < count; ++m) {
    ApplyResult(members[m], plan.micro_batches[m], (*results)[m], config.vocab_size, now, metrics_);
  }
  Report(step_id, plan, absl::ToDoubleSeconds(now - start), *results);
  return absl::OkStatus();
}

void Scheduler::Report(uint64_t step_id, const StepPlan& plan, double seconds,
                       const std::vector<MicroBatchResult>& results) {
  std::map<transport::PeerId, uint64_t> worker_micros;
  StepReport report;
  report.step_id = step_id;
  for (const auto& mb : plan.micro_batches) report.num_sequences += static_cast<int>(mb.size());
  report.num_tokens = plan.num_tokens;
  report.num_prompt_tokens = plan.num_prompt_tokens;
  report.seconds = seconds;
  for (const MicroBatchResult& r : results) {
    for (const v1::WorkerTime& t : r.timings) {
      worker_micros[t.peer_id()] += t.micros();
      report.weight_bytes += static_cast<int64_t>(t.weight_bytes());
    }
  }
  if (options_.on_step) options_.on_step(report);
  if (!metrics_) return;
  metrics_->ObserveStep(seconds, plan.num_tokens);
  for (const auto& [peer, micros] : worker_micros) {
    const std::string name = cluster_->WorkerName(peer);
    if (!name.empty()) metrics_->ObserveWorkerStep(name, micros / 1e6);
  }
}

}  // namespace mmx::coordinator
