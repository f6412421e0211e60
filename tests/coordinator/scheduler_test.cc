// The scheduler against a worker the test plays over InprocTransport: a real Cluster (its
// control session driven directly), a real data plane in memory, no processes.
#include "coordinator/scheduler.h"

#include <atomic>
#include <memory>
#include <vector>

#include "tests/coordinator/scheduler_fixture.h"

namespace mmx::coordinator {
namespace {

using namespace scheduler_testing;  // NOLINT: the fixture and its helpers
using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

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

// The frees ride on micro-batch 0; where it fails, later stages never saw them: they go again.
TEST_F(SchedulerTest, FreesCarriedByAFailedMicroBatchAreSentAgain) {
  SchedulerOptions options;
  options.queue_timeout = absl::Hours(1);
  options.micro_batches = 1;
  StartScheduler(options);
  auto stopped = Submit({1, 2, 3, 4}, 8, {4});  // ends with its first token, 4
  auto failing = Submit({1, 2, 3, 4}, 3);
  auto steps = std::make_shared<std::atomic<int>>(0);
  ServeSteps([steps](const v1::StepHeader& h) {
    if (++*steps != 2) return CountingTail(h);
    v1::TokensHeader t;  // the second step (it frees `stopped`) fails where it arose
    t.set_error("worker w: sequence at position 4 but this stage holds 3 tokens of it");
    t.set_error_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
    return t;
  });
  JoinWorker();
  Finish(*stopped);
  Finish(*failing);
  EXPECT_THAT(failing->final_status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  auto next = Submit({7, 8}, 1);
  Finish(*next);
  const std::vector<v1::StepHeader> seen = Seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_THAT(seen[1].freed_sequences(), ::testing::ElementsAre(stopped->id()));
  EXPECT_THAT(seen[2].freed_sequences(), ::testing::UnorderedElementsAre(stopped->id(), failing->id()));
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

class FailoverTest : public SchedulerTest {
 protected:
  // Two requests (one long prompt in chunks, one short) generated to the end.
  std::vector<std::vector<int32_t>> Run(int drop_at) {
    ContextWorker worker;
    StopWorkerAtExit stop{this};
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
  StopWorkerAtExit stop{this};
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