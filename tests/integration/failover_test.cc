// Integration: a worker killed (kill -9) while requests stream, then started again under its
// name. The requests pause and go on; each returns exactly the tokens of an undisturbed run
// (greedy, and seeded sampling), with log-probabilities within 1e-4. Real mmx-coord and
// mmx-worker processes on the golden tiny-a checkpoint.
#include <signal.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/failover_streams.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/shards.h"
#include "tests/testing/process.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kModel = testing::GoldenDir();

std::string Disaggregated() { return testing::DisaggregatedShard(kModel); }

std::string Replicated() { return testing::ReplicatedExpertsShard(kModel); }

// Runs the failover cases undisturbed and through `disturb` (testing::ExpectSameOutputsThrough)
// and checks, with `pauses`, that the coordinator paused and replayed them for the loss of
// `victim`.
void ExpectFailoverKeepsOutputs(testing::LocalCluster& c, const std::string& victim,
                                const std::function<void()>& disturb, bool pauses = true) {
  testing::ExpectSameOutputsThrough(c, testing::FailoverCases(), disturb);
  // It was a failover: the sequences were paused and replayed, not finished before the kill.
  const std::string log = c.Log("coordinator");
  if (pauses) {
    EXPECT_THAT(log, HasSubstr(testing::PausedEveryCase() + "worker '" + victim + "' lost"));
    EXPECT_THAT(log, HasSubstr("failover: cluster whole again after"));
  } else {
    EXPECT_THAT(log, Not(HasSubstr("failover:")));
  }
  if (::testing::Test::HasFailure()) {
    for (const char* name : {"coordinator", "stage0", "stage1", "experts-a", "experts-b"}) {
      ADD_FAILURE() << "log of " << name << ":\n" << c.Log(name);
    }
  }
}

class FailoverTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FailoverTest, AKilledAndRestartedWorkerPausesTheStreamsWhichThenGiveTheUndisturbedTokens) {
  const std::string victim = GetParam();
  auto cluster = testing::LocalCluster::StartWith(Disaggregated(), {"--prefill-chunk", "64"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ExpectFailoverKeepsOutputs(c, victim, [&] {
    c.KillWorker(victim);
    ASSERT_TRUE(c.WaitWorkerState(victim, v1::WORKER_STATE_LOST, absl::Seconds(30)).ok());
    ASSERT_TRUE(c.StartWorker(victim).ok());
  });
}

// Two waves with a step out at once, two micro-batches each: the loss voids both waves' steps,
// and the replay rebuilds each.
TEST(FailoverStepsInFlightTest, AKilledStageWithTwoStepsInFlightLosesNoToken) {
  auto cluster = testing::LocalCluster::StartWith(
      Disaggregated(), {"--prefill-chunk", "64", "--steps-in-flight", "2"});  // LocalCluster: 2 micro-batches
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ExpectFailoverKeepsOutputs(c, "stage1", [&] {
    c.KillWorker("stage1");
    ASSERT_TRUE(c.WaitWorkerState("stage1", v1::WORKER_STATE_LOST, absl::Seconds(30)).ok());
    ASSERT_TRUE(c.StartWorker("stage1").ok());
  });
  auto status = c.Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->stats().steps_in_flight_limit(), 2);
  EXPECT_GT(status->stats().overlapped_steps_total(), 0);
}

TEST(FailoverFrozenTest, AWorkerFrozenPastTheHeartbeatTimeoutIsLostAndRejoinsWhenItWakes) {
  auto cluster =
      testing::LocalCluster::StartWith(Disaggregated(), {"--prefill-chunk", "64", "--heartbeat-timeout", "2"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ExpectFailoverKeepsOutputs(c, "stage0", [&] {
    c.Signal("stage0", SIGSTOP);
    // Its TCP connection stays up: only the missing heartbeats tell.
    ASSERT_TRUE(c.WaitWorkerState("stage0", v1::WORKER_STATE_LOST, absl::Seconds(30)).ok());
    auto status = c.Status();
    ASSERT_TRUE(status.ok());
    EXPECT_FALSE(status->ready());
    for (const v1::WorkerStatus& w : status->workers()) {
      if (w.name() == "stage0") {
        EXPECT_THAT(w.message(), HasSubstr("no heartbeat for"));
      }
    }
    c.Signal("stage0", SIGCONT);  // it finds its session ended, registers again and reloads
  });
  EXPECT_THAT(c.Log("stage0"), HasSubstr("registering again"));
  EXPECT_THAT(c.Log("stage0"), HasSubstr("reusing the shard already loaded"));  // not read twice
}

TEST(FailoverReplicatedTest, AnExpertHostWhoseExpertsAreReplicatedIsRoutedAroundWithoutAPause) {
  auto cluster = testing::LocalCluster::StartWith(Replicated(), {"--prefill-chunk", "64"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ExpectFailoverKeepsOutputs(
      c, "experts-b",
      [&] {
        c.KillWorker("experts-b");
        ASSERT_TRUE(c.WaitWorkerState("experts-b", v1::WORKER_STATE_LOST, absl::Seconds(30)).ok());
        auto status = c.Status();
        ASSERT_TRUE(status.ok());
        EXPECT_TRUE(status->ready());  // serving goes on without it
      },
      /*pauses=*/false);
  EXPECT_THAT(c.Log("coordinator"), HasSubstr("every expert it held is held elsewhere"));
  // It comes back without a new epoch: a request runs, and no failover happened at any point.
  ASSERT_TRUE(c.StartWorker("experts-b").ok());
  ASSERT_TRUE(c.WaitWorkerState("experts-b", v1::WORKER_STATE_READY, absl::Seconds(60)).ok());
  auto again = testing::GenerateOnce(c.stub(), {1, 2, 3}, 8);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(c.Log("coordinator"), HasSubstr("worker 'experts-b' is back"));
  auto after = c.Status();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->stats().failovers_total(), 0) << c.Log("coordinator") << c.Log("stage0") << c.Log("stage1");
}

TEST(FailoverStandbyTest, AStandbyTakesOverAKilledStageAndTheStreamsGoOn) {
  auto cluster = testing::LocalCluster::StartWith(Disaggregated(), {"--prefill-chunk", "64"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ASSERT_TRUE(c.StartStandby("spare").ok());
  ASSERT_TRUE(c.WaitWorkerState("spare", v1::WORKER_STATE_STANDBY, absl::Seconds(60)).ok()) << c.Log("spare");
  ExpectFailoverKeepsOutputs(c, "stage1", [&] { c.KillWorker("stage1"); });  // nobody restarts it
  EXPECT_THAT(c.Log("coordinator"), HasSubstr("standby 'spare' takes the entry of lost worker 'stage1'"));
  auto status = c.Status();
  ASSERT_TRUE(status.ok());
  for (const v1::WorkerStatus& w : status->workers()) {
    if (w.name() == "stage1") {
      EXPECT_EQ(w.process_name(), "spare");
    }
    EXPECT_NE(w.state(), v1::WORKER_STATE_STANDBY) << w.name();  // the pool is empty now
  }
  // The old worker starts again: its entry is taken, so it becomes the new standby.
  ASSERT_TRUE(c.StartWorker("stage1").ok());
  ASSERT_TRUE(c.WaitWorkerState("stage1", v1::WORKER_STATE_STANDBY, absl::Seconds(60)).ok()) << c.Log("stage1");
}

TEST(FailoverGracefulTest, ASigtermedStageFinishesItsStepExitsAndItsRestartLosesNothing) {
  auto cluster = testing::LocalCluster::StartWith(Disaggregated(), {"--prefill-chunk", "64"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ExpectFailoverKeepsOutputs(c, "stage0", [&] {
    c.Signal("stage0", SIGTERM);
    absl::StatusOr<int> exit = c.WaitExit("stage0", absl::Seconds(30));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 0);  // dismissed, not killed
    ASSERT_TRUE(c.StartWorker("stage0").ok());  // the rolling restart
  });
  EXPECT_THAT(c.Log("stage0"), HasSubstr("dismissed by the coordinator"));
  EXPECT_THAT(c.Log("coordinator"), HasSubstr("worker 'stage0' is stopping (SIGTERM)"));
}

TEST(FailoverGracefulTest, ASigtermedStageHandsItsEntryToAStandbyBeforeItLeaves) {
  auto cluster = testing::LocalCluster::StartWith(Disaggregated(), {"--prefill-chunk", "64"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ASSERT_TRUE(c.StartStandby("spare").ok());
  ASSERT_TRUE(c.WaitWorkerState("spare", v1::WORKER_STATE_STANDBY, absl::Seconds(60)).ok()) << c.Log("spare");
  testing::ExpectSameOutputsThrough(c, testing::FailoverCases(), [&] {
    c.Signal("stage1", SIGTERM);
    absl::StatusOr<int> exit = c.WaitExit("stage1", absl::Seconds(60));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 0);
  });
  const std::string log = c.Log("coordinator");
  EXPECT_THAT(log, HasSubstr("standby 'spare' loads its entry first"));
  EXPECT_THAT(log, HasSubstr(testing::PausedEveryCase() +
                                  "worker 'stage1' stopped (SIGTERM); standby 'spare' took over its entry)"));
  EXPECT_THAT(c.Log("stage1"), HasSubstr("standby 'spare' took over your entry"));
}

TEST(FailoverJobsTest, ABatchJobRunningThroughAKilledAndRestartedStageEndsWithTheSoloOutputs) {
  const std::string state_dir = testing::TempPath("failover-jobs");
  auto cluster = testing::LocalCluster::StartWith(Disaggregated(), {"--state-dir", state_dir});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ASSERT_TRUE(c.WaitReady(absl::Seconds(60)).ok());
  v1::SubmitJobRequest submit;
  for (int i = 0; i < 3; ++i) {
    v1::GenerateRequest* r = submit.add_requests();
    for (int t = 0; t < 5 + 40 * i; ++t) r->add_prompt_token_ids((t * 13 + i) % 400);
    r->mutable_sampling()->set_max_tokens(250);
    r->mutable_sampling()->set_ignore_eos(true);
  }
  v1::Job job;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(c.stub().SubmitJob(&context, submit, &job).ok());
  }
  // Once its requests run (first tokens out: the coordinator's metrics count them), the kill.
  for (int i = 0; i < 2000; ++i) {
    auto status = c.Status();
    if (status.ok() && status->stats().generated_tokens_total() > 0) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  c.KillWorker("stage1");
  ASSERT_TRUE(c.WaitWorkerState("stage1", v1::WORKER_STATE_LOST, absl::Seconds(30)).ok());
  ASSERT_TRUE(c.StartWorker("stage1").ok());
  const v1::Job done = testing::AwaitJobSucceeded(c.stub(), job.job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(done.results_size(), 3);
  EXPECT_THAT(c.Log("coordinator"), HasSubstr("failover:"));  // it was running, and paused
  for (int i = 0; i < 3; ++i) {
    const v1::JobResult& r = done.results(i);
    EXPECT_TRUE(r.error().empty()) << r.error();
    const std::vector<int32_t> prompt(submit.requests(i).prompt_token_ids().begin(),
                                      submit.requests(i).prompt_token_ids().end());
    testing::Stream solo(c.stub(), prompt, 250, 0.f, 0);
    ASSERT_TRUE(solo.ReadToEnd().ok());
    EXPECT_EQ(std::vector<int32_t>(r.token_ids().begin(), r.token_ids().end()), solo.tokens) << "request " << i;
  }
}

TEST(GracefulCoordinatorTest, SigtermLetsRunningRequestsFinishAndRefusesNewOnes) {
  auto cluster = testing::LocalCluster::StartWith(Disaggregated(), {"--shutdown-timeout", "60"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::LocalCluster& c = **cluster;
  ASSERT_TRUE(c.WaitReady(absl::Seconds(60)).ok());
  testing::Stream running(c.stub(), {1, 2, 3}, 300, 0.f, 0);
  ASSERT_TRUE(running.ReadOne());
  c.Signal("coordinator", SIGTERM);
  // It still answers while it drains, but admits nothing.
  absl::StatusOr<testing::Generation> refused = absl::UnknownError("not tried");
  for (int i = 0; i < 100; ++i) {  // until the signal has landed
    refused = testing::GenerateOnce(c.stub(), {1, 2}, 2);
    if (!refused.ok()) break;
  }
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("shutting down"));
  const grpc::Status st = running.ReadToEnd();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(running.finish_reason, "length");
  EXPECT_EQ(running.tokens.size(), 300u);
  absl::StatusOr<int> exit = c.WaitExit("coordinator", absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);
  EXPECT_THAT(c.Log("coordinator"), HasSubstr("no request running, shutting down"));
}

// An attention stage holding lm_head (the tail), and an expert host holding the only copy of
// experts 5-7.
INSTANTIATE_TEST_SUITE_P(Workers, FailoverTest, ::testing::Values("stage1", "experts-b"),
                         [](const auto& info) { return info.param == "stage1" ? "Stage" : "ExpertHost"; });

}  // namespace
}  // namespace mmx
