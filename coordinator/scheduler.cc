#include "coordinator/scheduler.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "coordinator/step_client.h"
#include "coordinator/step_results.h"

namespace mmx::coordinator {

Scheduler::Scheduler(Cluster* cluster, transport::Transport* transport, SchedulerOptions options, Metrics* metrics)
    : cluster_(cluster), options_(std::move(options)), metrics_(metrics),
      steps_(StepClient(transport, transport::WireLimits{cluster->config().hidden_size, cluster->config().vocab_size,
                                                          cluster->config().num_hidden_layers,
                                                          cluster->config().num_local_experts})) {
  // A lost worker, a new epoch, the cluster ready: the loop looks again (a wait on replies included).
  subscription_ = cluster_->Subscribe([waker = waker_](bool, uint64_t) { waker->Wake(); });
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

bool Scheduler::draining() const {
  absl::MutexLock lock(&mu_);
  return !draining_.empty();
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

int Scheduler::steps_in_flight_limit() const {
  absl::MutexLock lock(&mu_);
  return waves_shown_;
}

void Scheduler::Ended(const std::string& outcome) {
  if (metrics_) metrics_->RequestEnded(outcome);
}

Scheduler::ClusterView Scheduler::ViewCluster(const std::vector<ScheduledRequest>& running) {
  const ClusterView view = cluster_->Now();
  if (view.ready && (!budget_ || budget_epoch_ != view.epoch)) {
    std::vector<StageMemory> stages;
    for (const Cluster::Stage& s : cluster_->Stages()) {
      stages.push_back({s.worker, s.begin, s.end, s.state_memory_bytes, s.group});
    }
    budget_ = std::make_unique<StateBudget>(cluster_->config(), cluster_->shard().kv_dtype, std::move(stages));
    budget_epoch_ = view.epoch;
    for (const ScheduledRequest& s : running) {
      budget_->Hold(s.request->id(), s.request->params().max_positions(), s.request->group);
    }
  }
  return view;
}

void Scheduler::LoseState(std::vector<ScheduledRequest>& running, PendingFrees& freed, const ClusterView& view) {
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

absl::Time Scheduler::Housekeep(std::vector<ScheduledRequest>& running, PendingFrees& freed,
                                const ClusterView& view) {
  // Cancelled requests leave now; their state goes with the next step header.
  for (ScheduledRequest& s : running) {
    if (s.request->cancelled() && !s.request->done()) {
      s.request->Fail(absl::CancelledError("cancelled by the client"));
      Ended("cancelled");
    }
  }
  // An ended request with a step out stays until its tokens are back: its state goes after.
  for (auto it = running.begin(); it != running.end();) {
    if (!it->request->done() || it->request->in_flight) {
      ++it;
      continue;
    }
    if (it->request->sent_first_step) freed[it->request->group].push_back(it->request->id());
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
    metrics_->SetStepsInFlight(static_cast<int>(steps_.size()), waves_);
  }
  // What a standby taking over a stage must have room for.
  if (budget_) cluster_->SetReservedState(budget_->reserved_by_worker());
  return look_again;
}

std::vector<Refusal> Scheduler::Admit(std::vector<ScheduledRequest>& running, PendingFrees& freed) {
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
      if (r.params().interactive() || r.done() || r.in_flight) continue;
      if (victim == running.end() || r.processed < victim->request->processed) victim = it;
    }
    if (victim == running.end()) return false;
    Request& r = *victim->request;
    if (r.sent_first_step) freed[r.group].push_back(r.id());
    budget_->Release(r.id());
    r.ForgetState();
    victim->queued_at = absl::Now();
    preempted.push_back(std::move(*victim));
    running.erase(victim);
    if (metrics_) metrics_->Preempted();
    return true;
  };
  Admitted admitted = AdmitWaiting(waiting_, *budget_, room, preempt);
  for (ScheduledRequest& s : admitted.admitted) {
    // Where its state was reserved (by the name the scheduler's waves know it by).
    s.request->group = groups_[GroupIndex(budget_->group_of(s.request->id()))];
    s.request->wave = -1;  // AssignWaves places it
    running.push_back(std::move(s));
  }
  for (auto it = preempted.rbegin(); it != preempted.rend(); ++it) waiting_.PushFront(std::move(*it));
  return std::move(admitted.refused);
}

void Scheduler::FailAll(std::vector<ScheduledRequest>& running, PendingFrees& freed,
                        const absl::Status& status) {
  steps_.VoidAll();
  for (ScheduledRequest& s : running) {
    if (!s.request->done()) Ended("error");
    s.request->Fail(status);
    if (s.request->sent_first_step) freed[s.request->group].push_back(s.request->id());
    if (budget_) budget_->Release(s.request->id());
  }
  running.clear();
  absl::MutexLock lock(&mu_);
  running_count_ = 0;
}

void Scheduler::Loop() {
  std::vector<ScheduledRequest> running;
  PendingFrees freed;
  state_epoch_ = cluster_->epoch();
  while (true) {
    waker_->Clear();  // what a wake announces is looked at below
    if (steps_.size() == 0) cluster_->Quiescent();  // workers waiting to stop may go
    const ClusterView view = ViewCluster(running);
    if (view.ready) CountWaves();
    if (view.epoch != state_epoch_) {
      steps_.VoidAll();
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
    absl::Status status;
    if (!view.ready) {
      // Steps out go on (a worker stopping waits for them); no new one starts.
      look_again = std::min(look_again, ExpirePaused(running, view));
    } else {
      if (lost_at_ != absl::InfiniteFuture()) {
        int64_t replay = 0;
        for (const ScheduledRequest& s : running) replay += s.request->replay_until - s.request->processed;
        Log(absl::StrCat("failover: cluster whole again after ", absl::FormatDuration(absl::Now() - lost_at_),
                         "; replaying ", running.size(), " sequences (", replay, " tokens)"));
        lost_at_ = absl::InfiniteFuture();
      }
      AssignWaves(running);
      status = LaunchSteps(running, freed, view);
    }
    if (status.ok()) {
      if (steps_.size() == 0) {
        waker_->WaitUntil(look_again);
        continue;
      }
      status = AwaitSteps(look_again, freed);
    }
    // A worker lost meanwhile: the top of the loop sees the new epoch and pauses them.
    if (status.ok() || cluster_->epoch() != view.epoch) continue;
    // A peer unreachable or silent (UCX's endpoint timeout is DEADLINE_EXCEEDED), or a step overdue.
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

}  // namespace mmx::coordinator
