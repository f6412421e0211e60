// The fault harness: a real cluster (mmx-coord and mmx-worker processes) whose every process
// runs in a network namespace of its own (netns_topology.h), its data plane on UCX over TCP
// across a bridge, serving concurrent streaming greedy and seeded requests of different
// lengths while one fault is injected per scenario. Each scenario asserts that every request
// ends with `length` and returns exactly the tokens of an undisturbed run of the same requests
// (log-probabilities within 1e-4), and prints its timings: the longest pause a client saw, the
// time until the cluster was whole again, the tokens replayed. Skips, saying why, where network
// namespaces cannot be made.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/faults/netns_topology.h"
#include "tests/testing/failover_streams.h"
#include "tests/testing/golden.h"
#include "tests/testing/http_get.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/shards.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kNodes = {"client", "coordinator", "stage0", "stage1", "experts-a", "experts-b", "spare"};

std::string Disaggregated() { return testing::DisaggregatedShard(testing::GoldenDir()); }

std::string Replicated() { return testing::ReplicatedExpertsShard(testing::GoldenDir()); }

class FaultHarnessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto topology = testing::NetnsTopology::Create(kNodes);
    if (!topology.ok()) {
      *skip_reason_ = std::string(topology.status().message());
      return;
    }
    topology_ = topology->release();
    // The test's own gRPC client (and the threads gRPC starts) live in the client's namespace.
    absl::Status entered = topology_->Enter("client");
    if (!entered.ok()) {
      *skip_reason_ = std::string(entered.message());
      delete topology_;
      topology_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete topology_;
    topology_ = nullptr;
  }
  void SetUp() override {
    if (topology_ == nullptr) GTEST_SKIP() << "network namespaces unavailable here: " << *skip_reason_;
  }

  std::unique_ptr<testing::LocalCluster> Start(const std::string& layout, std::vector<std::string> coordinator_args = {}) {
    testing::LocalCluster::Placement placement;
    placement.coordinator_address = topology_->Address("coordinator") + ":7070";
    placement.prefix = [](const std::string& process) { return topology_->Prefix(process); };
    // Metrics on the namespace's address: the harness scrapes them from outside (the default is
    // loopback, inside the coordinator's namespace).
    coordinator_args.insert(coordinator_args.end(), {"--prefill-chunk", "64", "--metrics-listen",
                                                     topology_->Address("coordinator") + ":7071"});
    auto cluster = testing::LocalCluster::StartPlaced(layout, coordinator_args, placement);
    EXPECT_TRUE(cluster.ok()) << cluster.status();
    return cluster.ok() ? *std::move(cluster) : nullptr;
  }

  // Runs the streams through `disturb` and prints the scenario's timings.
  void RunScenario(testing::LocalCluster& c, const std::string& scenario, const std::function<void()>& disturb) {
    const absl::Time start = absl::Now();
    const testing::Pauses pauses = testing::ExpectSameOutputsThrough(c, testing::FailoverCases(), disturb);
    const std::string log = c.Log("coordinator");
    std::string whole = "-";
    if (size_t at = log.find("cluster whole again after "); at != std::string::npos) {
      at += std::string("cluster whole again after ").size();
      whole = log.substr(at, log.find(';', at) - at);
    }
    const std::string metrics = testing::HttpGet(topology_->Address("coordinator") + ":7071", "/metrics");
    auto counter = [&](const std::string& name) {
      for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
        if (absl::StartsWith(line, name + " ")) return std::string(line.substr(name.size() + 1));
      }
      return std::string("?");
    };
    std::printf("fault-harness: %-40s longest pause %6.2f s (undisturbed %.2f s), whole again after %s, replayed %s "
                "tokens, failovers %s (scenario %.1f s)\n",
                scenario.c_str(), absl::ToDoubleSeconds(pauses.disturbed), absl::ToDoubleSeconds(pauses.undisturbed),
                whole.c_str(), counter("mmx_replayed_tokens_total").c_str(),
                counter("mmx_failovers_total").c_str(), absl::ToDoubleSeconds(absl::Now() - start));
    std::fflush(stdout);
    if (HasFailure()) {
      for (const char* name : {"coordinator", "stage0", "stage1", "experts-a", "experts-b", "spare"}) {
        ADD_FAILURE() << "log of " << name << ":\n" << c.Log(name);
      }
    }
  }

  static testing::NetnsTopology* topology_;
  static std::string* skip_reason_;
};

testing::NetnsTopology* FaultHarnessTest::topology_ = nullptr;
std::string* FaultHarnessTest::skip_reason_ = new std::string;

TEST_F(FaultHarnessTest, ExpertHostWithReplicasKilled) {
  auto c = Start(Replicated());
  ASSERT_NE(c, nullptr);
  RunScenario(*c, "kill -9 expert host with replicas", [&] { c->KillWorker("experts-b"); });
  EXPECT_THAT(c->Log("coordinator"), Not(HasSubstr("failover:")));  // routed around, no pause
}

TEST_F(FaultHarnessTest, StageKilledWithAStandbyUp) {
  auto c = Start(Disaggregated());
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->StartStandby("spare").ok());
  ASSERT_TRUE(c->WaitWorkerState("spare", v1::WORKER_STATE_STANDBY, absl::Seconds(60)).ok()) << c->Log("spare");
  RunScenario(*c, "kill -9 stage, standby up", [&] { c->KillWorker("stage1"); });
  EXPECT_THAT(c->Log("coordinator"), HasSubstr("standby 'spare' takes the entry of lost worker 'stage1'"));
}

TEST_F(FaultHarnessTest, StageKilledAndRestartedAfterAFewSeconds) {
  auto c = Start(Disaggregated());
  ASSERT_NE(c, nullptr);
  RunScenario(*c, "kill -9 stage, restart after 3 s", [&] {
    c->KillWorker("stage0");
    absl::SleepFor(absl::Seconds(3));  // the fault's shape: three seconds with the stage down
    ASSERT_TRUE(c->StartWorker("stage0").ok());
  });
  EXPECT_THAT(c->Log("coordinator"), HasSubstr(testing::PausedEveryCase() + "worker 'stage0' lost"));
}

TEST_F(FaultHarnessTest, WorkerFrozenPastTheHeartbeatTimeout) {
  auto c = Start(Disaggregated(), {"--heartbeat-timeout", "2"});
  ASSERT_NE(c, nullptr);
  RunScenario(*c, "SIGSTOP stage past heartbeat (2 s)", [&] {
    c->Signal("stage1", SIGSTOP);
    ASSERT_TRUE(c->WaitWorkerState("stage1", v1::WORKER_STATE_LOST, absl::Seconds(30)).ok());
    c->Signal("stage1", SIGCONT);
  });
  EXPECT_THAT(c->Log("coordinator"), HasSubstr("no heartbeat for"));
}

TEST_F(FaultHarnessTest, DataPlaneLinkDownForFiveSeconds) {
  auto c = Start(Disaggregated());
  ASSERT_NE(c, nullptr);
  RunScenario(*c, "link of a stage down 5 s", [&] {
    ASSERT_TRUE(topology_->SetLink("stage0", false).ok());
    absl::SleepFor(absl::Seconds(5));  // the fault's shape: the link is down this long
    ASSERT_TRUE(topology_->SetLink("stage0", true).ok());
  });
}

TEST_F(FaultHarnessTest, TenPercentPacketLossForTenSeconds) {
  if (!testing::NetnsTopology::HasNft()) GTEST_SKIP() << "no /usr/sbin/nft (nftables): random loss needs it";
  auto c = Start(Disaggregated());
  ASSERT_NE(c, nullptr);
  RunScenario(*c, "10% loss on a stage for 10 s", [&] {
    ASSERT_TRUE(topology_->DropRandomly("stage1", 10).ok());
    absl::SleepFor(absl::Seconds(10));  // the fault's shape
    ASSERT_TRUE(topology_->DropRandomly("stage1", 0).ok());
  });
}

TEST_F(FaultHarnessTest, SigtermWithoutAStandbyAndRestart) {
  auto c = Start(Disaggregated());
  ASSERT_NE(c, nullptr);
  RunScenario(*c, "SIGTERM expert host (only copy), restart", [&] {
    c->Signal("experts-b", SIGTERM);
    absl::StatusOr<int> exit = c->WaitExit("experts-b", absl::Seconds(30));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 0);
    ASSERT_TRUE(c->StartWorker("experts-b").ok());
  });
  EXPECT_THAT(c->Log("experts-b"), HasSubstr("dismissed by the coordinator"));
}

}  // namespace
}  // namespace mmx
