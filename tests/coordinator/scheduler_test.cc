// The scheduler against a worker the test plays over InprocTransport: a real Cluster (its
// control session driven directly), a real data plane in memory, no processes.
#include "coordinator/scheduler.h"

#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plan/shard_config.h"
#include "tests/testing/golden.h"
#include "tests/testing/status_matchers.h"
#include "transport/inproc_transport.h"
#include "transport/message_keys.h"

namespace mmx::coordinator {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;
using transport::InboxKey;
using transport::MessageKind;

constexpr uint64_t kToken = 77;
const std::string kModel = testing::GoldenDir();

// The reply the fake worker sends to one micro-batch.
using Behaviour = std::function<v1::TokensHeader(const v1::StepHeader&)>;

// Samples token (start_position + num_tokens) % 100 for every sequence that samples.
v1::TokensHeader CountingTail(const v1::StepHeader& h) {
  v1::TokensHeader reply;
  for (const v1::StepSequence& s : h.sequences()) {
    if (!s.sample()) continue;
    v1::SampledToken* t = reply.add_tokens();
    t->set_sequence_id(s.sequence_id());
    t->set_token_id(static_cast<int32_t>((s.start_position() + s.num_tokens()) % 100));
  }
  return reply;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = model::ModelConfig::FromFile(kModel);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    fabric_ = std::make_shared<transport::InprocFabric>();
    coordinator_ = transport::InprocTransport::Create(fabric_, "coordinator", {0, kToken}).value();
    worker_ = transport::InprocTransport::Create(fabric_, "w", {1, kToken}).value();
    cluster_ = std::make_unique<Cluster>(plan::WholeModelShardConfig(kModel, "w", "cpu", config_), config_, "fp",
                                         coordinator_.get(), kToken);
    cluster_->set_log(NullLog());
  }
  void TearDown() override {
    scheduler_.reset();
    worker_->Shutdown();
    if (worker_thread_.joinable()) worker_thread_.join();
  }

  // The worker registers, loads and applies the peer table: the cluster is ready.
  void JoinWorker() {
    v1::Register reg;
    reg.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
    reg.set_name("w");
    reg.set_device("cpu");
    auto writer = [this](const v1::CoordinatorMessage& m) {
      if (m.has_peers()) {
        absl::MutexLock lock(&table_mu_);
        table_version_ = m.peers().version();
        sequence_epoch_ = m.peers().sequence_epoch();
      }
      return true;
    };
    ASSERT_THAT(cluster_->Register(reg, writer, &session_).status(), IsOk());
    v1::Ready ready;
    ready.set_checkpoint_fingerprint("fp");
    ready.set_data_address("w");
    ready.set_state_memory_bytes(int64_t{1} << 34);
    ASSERT_THAT(cluster_->OnReady(session_, ready), IsOk());
    ASSERT_THAT(worker_->Connect(0, "coordinator"), IsOk());
    cluster_->OnPeersApplied(session_, table_version());
    ASSERT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
  }

  // Serves every step message with `behaviour` (no reply when it returns an empty step id 0
  // header: the step goes unanswered), keeping each header it saw.
  void ServeSteps(Behaviour behaviour, bool reply = true) {
    worker_thread_ = std::thread([this, behaviour, reply] {
      while (true) {
        absl::StatusOr<transport::Message> m = worker_->ReceiveAny(InboxKey(MessageKind::kStep), absl::InfiniteDuration());
        if (!m.ok()) return;
        v1::StepHeader h;
        ASSERT_TRUE(h.ParseFromString(m->header));
        {
          absl::MutexLock lock(&mu_);
          seen_.push_back(h);
        }
        if (!reply) continue;
        v1::TokensHeader t = behaviour(h);
        t.set_step_id(h.step_id());
        t.set_micro_batch(h.micro_batch());
        (void)worker_->Send(0, transport::ReplyKey(MessageKind::kTokens, h.step_id(), h.micro_batch(), 0),
                            t.SerializeAsString(), nullptr, 0);
      }
    });
  }

  void StartScheduler(SchedulerOptions options = {}) {
    scheduler_ = std::make_unique<Scheduler>(cluster_.get(), coordinator_.get(), std::move(options));
  }

  std::shared_ptr<Request> Submit(std::vector<int32_t> prompt, int max_tokens, std::vector<int64_t> stop_ids = {}) {
    Request::Params p;
    p.prompt = std::move(prompt);
    p.max_tokens = max_tokens;
    p.stop_ids = std::move(stop_ids);
    auto r = std::make_shared<Request>(next_id_++, p);
    EXPECT_THAT(scheduler_->Submit(r), IsOk());
    return r;
  }

  // Waits for the request to end (bounded: a hang fails here instead of timing out the run).
  static std::vector<int32_t> Finish(Request& r) {
    std::vector<int32_t> ids;
    std::vector<TokenEvent> events;
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (absl::Now() < give_up && r.Next(&events, give_up - absl::Now())) {
      for (const TokenEvent& e : events) ids.push_back(e.token_id);
    }
    EXPECT_TRUE(r.done()) << "request " << r.id() << " did not end within 30 s";
    return ids;
  }

  std::vector<v1::StepHeader> Seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }
  // Waits until the worker has seen `n` step messages, or one that satisfies `pred`.
  void AwaitSeen(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seen_.size() >= n; };
    mu_.Await(absl::Condition(&enough));
  }
  void AwaitFreed(uint64_t id) {
    absl::MutexLock lock(&mu_);
    auto freed = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const v1::StepHeader& h : seen_) {
        for (uint64_t f : h.freed_sequences()) {
          if (f == id) return true;
        }
      }
      return false;
    };
    mu_.Await(absl::Condition(&freed));
  }

  model::ModelConfig config_;
  std::shared_ptr<transport::InprocFabric> fabric_;
  std::unique_ptr<transport::InprocTransport> coordinator_, worker_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Scheduler> scheduler_;
  std::thread worker_thread_;
  uint64_t session_ = 0, next_id_ = 1;
  // The newest peer table the worker was sent (the cluster's writer may run on any thread).
  absl::Mutex table_mu_;
  uint64_t table_version_ ABSL_GUARDED_BY(table_mu_) = 0;
  uint64_t sequence_epoch_ ABSL_GUARDED_BY(table_mu_) = 0;
  uint64_t AwaitTableAfter(uint64_t version) {
    absl::MutexLock lock(&table_mu_);
    auto newer = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(table_mu_) { return table_version_ > version; };
    table_mu_.Await(absl::Condition(&newer));
    return table_version_;
  }
  uint64_t sequence_epoch() {
    absl::MutexLock lock(&table_mu_);
    return sequence_epoch_;
  }
  uint64_t table_version() {
    absl::MutexLock lock(&table_mu_);
    return table_version_;
  }
  absl::Mutex mu_;
  std::vector<v1::StepHeader> seen_ ABSL_GUARDED_BY(mu_);
};

TEST_F(SchedulerTest, PrefillsInChunksThenDecodesUntilMaxTokens) {
  JoinWorker();
  ServeSteps(CountingTail);
  SchedulerOptions options;
  options.prefill_chunk = 3;
  StartScheduler(options);
  auto r = Submit({5, 6, 7, 8, 9, 10, 11}, 3);
  EXPECT_EQ(Finish(*r), (std::vector<int32_t>{7, 8, 9}));
  EXPECT_THAT(r->final_status(), IsOk());
  EXPECT_EQ(r->finish_reason(), "length");
  // Chunks [0, 3), [3, 6), [6, 7) (which samples), then decode at positions 7 and 8.
  std::vector<std::pair<int64_t, int32_t>> steps;
  for (const v1::StepHeader& h : Seen()) {
    ASSERT_EQ(h.sequences_size(), 1);
    steps.push_back({h.sequences(0).start_position(), h.sequences(0).num_tokens()});
  }
  EXPECT_EQ(steps, (std::vector<std::pair<int64_t, int32_t>>{{0, 3}, {3, 3}, {6, 1}, {7, 1}, {8, 1}}));
  EXPECT_FALSE(Seen()[1].sequences(0).sample());
  EXPECT_TRUE(Seen()[2].sequences(0).sample());
}

TEST_F(SchedulerTest, AStopIdEndsARequestMidStepAndTheNextStepFreesItsState) {
  // Both wait for the cluster, so that the first step carries both.
  SchedulerOptions options;
  options.queue_timeout = absl::Hours(1);
  StartScheduler(options);
  // Both prompts end at position 4: the first token of each is 4; 4 is a stop id of the first.
  auto stopped = Submit({1, 2, 3, 4}, 8, {4});
  auto going = Submit({1, 2, 3, 4}, 3);
  ServeSteps(CountingTail);
  JoinWorker();
  EXPECT_EQ(Finish(*stopped), (std::vector<int32_t>{4}));
  EXPECT_EQ(stopped->finish_reason(), "stop");
  EXPECT_EQ(Finish(*going), (std::vector<int32_t>{4, 5, 6}));
  const std::vector<v1::StepHeader> seen = Seen();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen[0].sequences_size(), 2);  // one step carried both prompts
  EXPECT_EQ(seen[1].sequences_size(), 1);
  EXPECT_THAT(seen[1].freed_sequences(), ::testing::ElementsAre(stopped->id()));
}

TEST_F(SchedulerTest, AStepThatFailsOnAWorkerEndsItsRequestsWithTheWorkersCode) {
  JoinWorker();
  ServeSteps([](const v1::StepHeader&) {
    v1::TokensHeader t;
    t.set_error("worker w: expert 3 of layer 1 is not held here");
    t.set_error_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
    return t;
  });
  StartScheduler();
  auto r = Submit({1, 2}, 4);
  Finish(*r);
  EXPECT_THAT(r->final_status(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not held")));
}

TEST_F(SchedulerTest, WithoutFailoverAWorkerLostMidStepEndsTheStepAtOnceNotAtItsTimeout) {
  JoinWorker();
  ServeSteps(CountingTail, /*reply=*/false);  // the step is never answered
  SchedulerOptions options;
  options.step_timeout = absl::Hours(1);
  options.failover_timeout = absl::ZeroDuration();
  StartScheduler(options);
  auto r = Submit({1, 2}, 4);
  AwaitSeen(1);  // the step is in flight
  cluster_->OnSessionEnded(session_);
  Finish(*r);  // within 30 s, not the hour
  EXPECT_THAT(r->final_status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("worker 'w' lost")));
  EXPECT_THAT(r->final_status().message(), HasSubstr("--failover-timeout 0"));
}

TEST_F(SchedulerTest, APausedRequestEndsAfterTheFailoverTimeoutNamingTheLostWorker) {
  JoinWorker();
  ServeSteps(CountingTail, /*reply=*/false);
  SchedulerOptions options;
  options.step_timeout = absl::Hours(1);
  options.failover_timeout = absl::Milliseconds(300);
  StartScheduler(options);
  auto r = Submit({1, 2}, 4);
  AwaitSeen(1);
  const absl::Time lost = absl::Now();
  cluster_->OnSessionEnded(session_);  // and it never comes back
  Finish(*r);
  EXPECT_GE(absl::Now() - lost, absl::Milliseconds(300));
  EXPECT_THAT(r->final_status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("worker 'w' lost")));
  EXPECT_THAT(r->final_status().message(), HasSubstr("--failover-timeout"));
}

TEST_F(SchedulerTest, CancellingAQueuedRequestWakesTheSchedulerAtOnce) {
  // No worker: the cluster is not ready, so the request waits (for an hour) in the queue.
  SchedulerOptions options;
  options.queue_timeout = absl::Hours(1);
  StartScheduler(options);
  auto r = Submit({1, 2}, 4);
  EXPECT_EQ(scheduler_->queued(), 1);
  r->Cancel();
  Finish(*r);
  EXPECT_THAT(r->final_status(), StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(scheduler_->queued(), 0);
}

TEST_F(SchedulerTest, AQueuedRequestRunsOnceTheClusterBecomesReady) {
  SchedulerOptions options;
  options.queue_timeout = absl::Hours(1);
  StartScheduler(options);
  auto r = Submit({1, 2}, 2);
  ServeSteps(CountingTail);
  JoinWorker();  // the cluster's change wakes the waiting scheduler
  EXPECT_EQ(Finish(*r), (std::vector<int32_t>{2, 3}));
}

TEST_F(SchedulerTest, ACancelledRunningRequestLeavesAndItsStateIsFreed) {
  JoinWorker();
  ServeSteps(CountingTail);
  StartScheduler();
  auto cancelled = Submit({1, 2}, 1000);
  auto other = Submit({1, 2}, 1000);
  AwaitSeen(3);
  cancelled->Cancel();
  Finish(*cancelled);
  EXPECT_THAT(cancelled->final_status(), StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  AwaitFreed(cancelled->id());  // a later step frees its state on the workers
  other->Cancel();
  Finish(*other);
}

TEST_F(SchedulerTest, DrainingEndsWaitingRequestsRefusesNewOnesAndLetsRunningOnesFinish) {
  JoinWorker();
  ServeSteps(CountingTail);
  SchedulerOptions options;
  options.max_sequences = 1;  // the second request waits in the queue
  StartScheduler(options);
  auto running = Submit({1, 2}, 200);
  AwaitSeen(1);
  auto waiting = Submit({1, 2}, 4);
  scheduler_->Drain("shutting down");
  Finish(*waiting);
  EXPECT_THAT(waiting->final_status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
  Request::Params p;
  p.prompt = {1};
  EXPECT_THAT(scheduler_->Submit(std::make_shared<Request>(99, p)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
  EXPECT_TRUE(scheduler_->WaitIdle(absl::Seconds(30)));
  EXPECT_EQ(Finish(*running).size(), 200u);
  EXPECT_EQ(running->finish_reason(), "length");
}

TEST_F(SchedulerTest, TheQueueRefusesBeyondItsBound) {
  SchedulerOptions options;
  options.max_queue = 1;
  options.queue_timeout = absl::Hours(1);
  StartScheduler(options);
  Submit({1}, 1);
  Request::Params p;
  p.prompt = {1};
  EXPECT_THAT(scheduler_->Submit(std::make_shared<Request>(99, p)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max-queue")));
}

// A worker that keeps per-sequence context like a real stage: a step at position 0 starts the
// sequence afresh, any other must continue exactly where the sequence stands, and the token it
// samples depends on every token fed so far. A replay that fed anything else would change the
// output. It refuses steps of another sequence epoch, as a real worker drops them.
class ContextWorker {
 public:
  v1::TokensHeader Step(const v1::StepHeader& h, const int32_t* tokens) {
    absl::MutexLock lock(&mu_);
    v1::TokensHeader reply;
    if (h.sequence_epoch() != epoch_) {
      reply.set_error(absl::StrCat("step of epoch ", h.sequence_epoch(), ", serving epoch ", epoch_));
      return reply;
    }
    for (const v1::StepSequence& s : h.sequences()) {
      std::vector<int32_t>& fed = fed_[s.sequence_id()];
      if (s.start_position() == 0) fed.clear();
      if (static_cast<int64_t>(fed.size()) != s.start_position()) {
        reply.set_error(absl::StrCat("sequence ", s.sequence_id(), " at ", s.start_position(), " but holds ", fed.size()));
        return reply;
      }
      fed.insert(fed.end(), tokens, tokens + s.num_tokens());
      tokens += s.num_tokens();
      if (!s.sample()) continue;
      int64_t hash = 0;
      for (int32_t t : fed) hash = (hash * 31 + t) % 1000003;
      v1::SampledToken* out = reply.add_tokens();
      out->set_sequence_id(s.sequence_id());
      out->set_token_id(static_cast<int32_t>(hash % 100));
    }
    return reply;
  }
  // A restarted worker: no sequence state, a new sequence epoch.
  void Restart(uint64_t sequence_epoch) {
    absl::MutexLock lock(&mu_);
    fed_.clear();
    epoch_ = sequence_epoch;
  }

 private:
  absl::Mutex mu_;
  std::map<uint64_t, std::vector<int32_t>> fed_ ABSL_GUARDED_BY(mu_);
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
};

class FailoverTest : public SchedulerTest {
 protected:
  // Serves steps with `worker` until `drop_at` steps were seen: that step goes unanswered (the
  // worker died with it) and the thread ends. Step `unavailable_at` is answered with a
  // data-plane error instead (a peer of the worker unreachable), the worker staying up.
  void ServeContext(ContextWorker* worker, int drop_at, int unavailable_at = -1) {
    worker_thread_ = std::thread([this, worker, drop_at, unavailable_at] {
      for (int n = 1;; ++n) {
        absl::StatusOr<transport::Message> m = worker_->ReceiveAny(InboxKey(MessageKind::kStep), absl::InfiniteDuration());
        if (!m.ok()) return;
        v1::StepHeader h;
        ASSERT_TRUE(h.ParseFromString(m->header));
        {
          absl::MutexLock lock(&mu_);
          seen_.push_back(h);
        }
        if (n == drop_at) return;
        v1::TokensHeader t = worker->Step(h, reinterpret_cast<const int32_t*>(m->payload.data()));
        if (n == unavailable_at) {
          t.Clear();
          t.set_error("worker w: ucp_am_send_nbx to peer 2: Endpoint timeout");
          t.set_error_code(static_cast<int>(absl::StatusCode::kUnavailable));
        }
        t.set_step_id(h.step_id());
        t.set_micro_batch(h.micro_batch());
        (void)worker_->Send(0, transport::ReplyKey(MessageKind::kTokens, h.step_id(), h.micro_batch(), 0),
                            t.SerializeAsString(), nullptr, 0);
      }
    });
  }

  // Two requests (one long prompt in chunks, one short) generated to the end.
  std::vector<std::vector<int32_t>> Run(int drop_at) {
    ContextWorker worker;
    JoinWorker();
    worker.Restart(sequence_epoch());
    ServeContext(&worker, drop_at);
    SchedulerOptions options;
    options.prefill_chunk = 4;
    options.step_timeout = absl::Hours(1);
    StartScheduler(options);
    auto a = Submit({3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, 12);
    auto b = Submit({2, 7}, 9);
    if (drop_at > 0) {
      AwaitSeen(drop_at);
      worker_thread_.join();
      cluster_->OnSessionEnded(session_);  // the worker is lost mid-step
      EXPECT_FALSE(a->done());
      EXPECT_FALSE(b->done());
      JoinWorker();  // ... and restarted under its name: a new peer table
      worker.Restart(sequence_epoch());
      ServeContext(&worker, -1);
    }
    std::vector<std::vector<int32_t>> out = {Finish(*a), Finish(*b)};
    EXPECT_THAT(a->final_status(), IsOk());
    EXPECT_THAT(b->final_status(), IsOk());
    EXPECT_EQ(a->finish_reason(), "length");
    return out;
  }
};

// What ContextWorker generates for `prompt`, undisturbed.
std::vector<int32_t> Undisturbed(std::vector<int32_t> context, int max_tokens) {
  std::vector<int32_t> out;
  for (int i = 0; i < max_tokens; ++i) {
    int64_t hash = 0;
    for (int32_t t : context) hash = (hash * 31 + t) % 1000003;
    out.push_back(static_cast<int32_t>(hash % 100));
    context.push_back(out.back());
  }
  return out;
}

TEST_F(FailoverTest, UndisturbedTheContextWorkerGivesTheExpectedTokens) {
  EXPECT_EQ(Run(/*drop_at=*/0), (std::vector<std::vector<int32_t>>{Undisturbed({3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, 12),
                                                                   Undisturbed({2, 7}, 9)}));
}

class FailoverAtStepTest : public FailoverTest, public ::testing::WithParamInterface<int> {};

// Lost in the middle of the long prompt's prefill (step 2), and in decode (step 7).
TEST_P(FailoverAtStepTest, ALostWorkersRequestsPauseAndAfterItsRestartFinishWithTheUndisturbedTokens) {
  const int drop_at = GetParam();
  EXPECT_EQ(Run(drop_at), (std::vector<std::vector<int32_t>>{Undisturbed({3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, 12),
                                                             Undisturbed({2, 7}, 9)}));
  // After the loss every step carried the new epoch, and each sequence restarted at 0.
  const std::vector<v1::StepHeader> seen = Seen();
  ASSERT_GT(seen.size(), static_cast<size_t>(drop_at));
  const v1::StepHeader& replay = seen[drop_at];
  EXPECT_GT(replay.sequence_epoch(), seen[0].sequence_epoch());
  ASSERT_EQ(replay.sequences_size(), 2);
  for (const v1::StepSequence& s : replay.sequences()) EXPECT_EQ(s.start_position(), 0);
  EXPECT_EQ(replay.freed_sequences_size(), 0);
}

INSTANTIATE_TEST_SUITE_P(Steps, FailoverAtStepTest, ::testing::Values(2, 7));

// A step that fails on the data plane while every worker keeps its session (a peer's link, or a
// loss the control plane has not seen): after the heartbeat timeout with no loss, the cluster
// starts a new epoch with the same workers and the sequences are replayed, not failed.
TEST_F(FailoverTest, AStepFailingUnavailableWithNoWorkerLostResetsAndReplaysTheSequences) {
  cluster_->set_heartbeat_timeout(absl::Milliseconds(300));
  ContextWorker worker;
  JoinWorker();
  worker.Restart(sequence_epoch());
  const uint64_t first_table = table_version();
  ServeContext(&worker, /*drop_at=*/-1, /*unavailable_at=*/4);
  SchedulerOptions options;
  options.prefill_chunk = 4;
  StartScheduler(options);
  auto a = Submit({3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, 12);
  auto b = Submit({2, 7}, 9);
  // The reset: a new table, of a new epoch, to the same worker; it applies it.
  const uint64_t reset_table = AwaitTableAfter(first_table);
  worker.Restart(sequence_epoch());
  cluster_->OnPeersApplied(session_, reset_table);
  EXPECT_EQ(Finish(*a), Undisturbed({3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, 12));
  EXPECT_EQ(Finish(*b), Undisturbed({2, 7}, 9));
  EXPECT_THAT(a->final_status(), IsOk());
  EXPECT_THAT(cluster_->last_loss(), HasSubstr("Endpoint timeout"));
}

}  // namespace
}  // namespace mmx::coordinator
