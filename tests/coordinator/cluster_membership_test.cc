// Cluster membership without processes: registrations, peer tables and losses driven directly,
// the sessions' writers recorded.
#include <map>
#include <tuple>
#include <set>
#include <string>
#include <vector>

#include "coordinator/cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/shards.h"
#include "tests/testing/status_matchers.h"
#include "transport/inproc_transport.h"

namespace mmx::coordinator {
namespace {

using ::mmx::testing::IsOk;

// Stage `stage` holds experts 0-3; hosts `a` and `b` both hold 4-7.
class ClusterMembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = model::ModelConfig::FromFile(testing::GoldenDir());
    ASSERT_THAT(config, IsOk());
    fabric_ = std::make_shared<transport::InprocFabric>();
    coordinator_ = transport::InprocTransport::Create(fabric_, "coordinator", {0, 1}).value();
    transport::PeerId id = 1;
    for (const char* name : {"stage", "a", "b", "spare"}) {
      auto endpoint = transport::InprocTransport::Create(fabric_, name, {id++, 1});
      ASSERT_THAT(endpoint.status(), IsOk());
      workers_.push_back(*std::move(endpoint));
    }
    auto shard = plan::ParseShardConfig(testing::StageAndTwinHostsShard(testing::GoldenDir()));
    ASSERT_THAT(shard, IsOk());
    cluster_ = std::make_unique<Cluster>(*shard, *config, "fp", coordinator_.get(), transport::ClusterToken{1, 1});
    cluster_->set_log(NullLog());
  }

  // Registers `name`; its messages go to inbox_[name]. Returns the first reply.
  v1::CoordinatorMessage Register(const std::string& name, bool standby = false, const std::string& device = "cpu",
                                  int64_t memory = int64_t{1} << 40, const std::string& host = "", int threads = 0,
                                  int host_cores = 0) {
    v1::Register reg;
    reg.set_host(host);
    reg.set_threads(threads);
    reg.set_host_cores(host_cores);
    reg.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
    reg.set_name(name);
    reg.set_device(device);
    reg.set_memory_bytes(memory);
    reg.set_standby(standby);
    auto writer = [this, name](const v1::CoordinatorMessage& m) {
      inbox_[name].push_back(m);
      return true;
    };
    absl::StatusOr<v1::CoordinatorMessage> reply =
        cluster_->Register(reg, writer, &session_[name], [this, name] { closed_.insert(name); });
    EXPECT_THAT(reply.status(), IsOk());
    if (!reply.ok()) return {};
    inbox_[name].push_back(*reply);
    return *reply;
  }
  // The status row of entry `name` (not a standby's); a test failure when there is none.
  v1::WorkerStatus Entry(const std::string& name) {
    const v1::ClusterStatus status = cluster_->Status();
    for (const v1::WorkerStatus& w : status.workers()) {
      if (w.name() == name && w.state() != v1::WORKER_STATE_STANDBY) return w;
    }
    ADD_FAILURE() << "no entry '" << name << "' in the cluster status";
    return {};
  }
  // Reports `name` (registered) loaded, at data address `name`.
  void Loaded(const std::string& name) {
    v1::Ready ready;
    ready.set_checkpoint_fingerprint("fp");
    ready.set_data_address(name);
    ASSERT_THAT(cluster_->OnReady(session_[name], ready), IsOk());
  }
  void Join(const std::string& name) {
    ASSERT_TRUE(Register(name).has_assignment());
    Loaded(name);
  }
  // Every worker applies the newest table it was sent, until no worker has a newer one (a table
  // that brings back a routed-around host reaches the others only after that host applied it).
  void ApplyTables() {
    for (bool more = true; more;) {
      more = false;
      std::vector<std::pair<std::string, uint64_t>> newest;  // the inboxes grow while we apply
      for (const auto& [name, messages] : inbox_) {
        for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
          if (!it->has_peers()) continue;
          if (it->peers().version() > applied_[name]) newest.emplace_back(name, it->peers().version());
          break;
        }
      }
      for (const auto& [name, version] : newest) {
        applied_[name] = version;
        cluster_->OnPeersApplied(session_[name], version);
        more = true;
      }
    }
  }
  const v1::CoordinatorMessage* Last(const std::string& name, bool (v1::CoordinatorMessage::*has)() const) {
    for (auto it = inbox_[name].rbegin(); it != inbox_[name].rend(); ++it) {
      if (((*it).*has)()) return &*it;
    }
    return nullptr;
  }

  std::shared_ptr<transport::InprocFabric> fabric_;
  std::unique_ptr<transport::InprocTransport> coordinator_;
  std::vector<std::unique_ptr<transport::InprocTransport>> workers_;  // the data addresses the cluster connects to
  std::unique_ptr<Cluster> cluster_;
  std::map<std::string, uint64_t> session_;
  std::map<std::string, uint64_t> applied_;  // the newest table version each worker applied
  std::map<std::string, std::vector<v1::CoordinatorMessage>> inbox_;
  std::set<std::string> closed_;  // sessions the cluster ended from its side
};

// Each peer entry says whether its host's cores are shared (workers with automatic busy-poll
// then sleep at once): the stage and a together ask 4 threads of a 2-core host, b is alone.
TEST_F(ClusterMembershipTest, ThePeerTableSaysWhichWorkersShareTheirHostsCores) {
  for (const auto& [name, host, cores] : {std::tuple{"stage", "vm", 2}, std::tuple{"a", "vm", 2}, std::tuple{"b", "box", 16}}) {
    ASSERT_TRUE(Register(name, false, "cpu", int64_t{1} << 40, host, 2, cores).has_assignment());
    Loaded(name);
  }
  ApplyTables();
  ASSERT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
  const v1::CoordinatorMessage* table = Last("b", &v1::CoordinatorMessage::has_peers);
  ASSERT_NE(table, nullptr);
  std::map<std::string, bool> shares;
  for (const v1::Peer& p : table->peers().peers()) shares[p.name()] = p.shares_cores();
  EXPECT_EQ(shares, (std::map<std::string, bool>{{"coordinator", false}, {"stage", true}, {"a", true}, {"b", false}}));
}

TEST_F(ClusterMembershipTest, AnExpertHostWhoseExpertsAreAllReplicatedIsRoutedAroundWithoutANewEpoch) {
  for (const char* name : {"stage", "a", "b"}) Join(name);
  ApplyTables();
  ASSERT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
  const uint64_t epoch = cluster_->epoch();

  cluster_->OnSessionEnded(session_["b"]);
  EXPECT_TRUE(cluster_->ready());
  EXPECT_EQ(cluster_->epoch(), epoch);
  const v1::CoordinatorMessage* lost = Last("stage", &v1::CoordinatorMessage::has_peer_lost);
  ASSERT_NE(lost, nullptr);
  EXPECT_EQ(lost->peer_lost().name(), "b");
  EXPECT_TRUE(lost->peer_lost().replicated());

  // b comes back: a table of the same epoch that lists it; the cluster stays ready throughout.
  Join("b");
  EXPECT_TRUE(cluster_->ready());
  const v1::CoordinatorMessage* table = Last("stage", &v1::CoordinatorMessage::has_peers);
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->peers().sequence_epoch(), epoch);
  EXPECT_EQ(table->peers().peers_size(), 4);  // the coordinator and all three
  // The table with b's new address reaches the stage only once b applied it: the stage routes to
  // b as soon as it applies it, and b drops dispatches from a stage it has not connected yet.
  const uint64_t b_table = Last("b", &v1::CoordinatorMessage::has_peers)->peers().version();
  EXPECT_LT(table->peers().version(), b_table);
  cluster_->OnPeersApplied(session_["b"], b_table);
  EXPECT_EQ(Last("stage", &v1::CoordinatorMessage::has_peers)->peers().version(), b_table);
  ApplyTables();
  EXPECT_TRUE(cluster_->ready());
  EXPECT_EQ(cluster_->epoch(), epoch);

  // Now a, whose experts b holds again: routed around too.
  cluster_->OnSessionEnded(session_["a"]);
  EXPECT_TRUE(cluster_->ready());
  // And then b, the last holder of 4-7: a new epoch, not ready, and a table without a or b
  // would not do: the cluster waits for them.
  cluster_->OnSessionEnded(session_["b"]);
  EXPECT_FALSE(cluster_->ready());
  EXPECT_GT(cluster_->epoch(), epoch);
  EXPECT_FALSE(Last("stage", &v1::CoordinatorMessage::has_peer_lost)->peer_lost().replicated());
  Join("b");
  ApplyTables();
  EXPECT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();  // b covers 4-7; a stays routed around
  const v1::CoordinatorMessage* after = Last("stage", &v1::CoordinatorMessage::has_peers);
  EXPECT_EQ(after->peers().sequence_epoch(), cluster_->epoch());
  EXPECT_EQ(after->peers().peers_size(), 3);  // the coordinator, stage and b
}

TEST_F(ClusterMembershipTest, LosingTheStageStartsANewEpoch) {
  for (const char* name : {"stage", "a", "b"}) Join(name);
  ApplyTables();
  ASSERT_TRUE(cluster_->ready());
  const uint64_t epoch = cluster_->epoch();
  cluster_->OnSessionEnded(session_["stage"]);
  EXPECT_FALSE(cluster_->ready());
  EXPECT_EQ(cluster_->epoch(), epoch + 1);
  EXPECT_THAT(cluster_->last_loss(), ::testing::HasSubstr("worker 'stage' lost"));
  Join("stage");
  ApplyTables();
  EXPECT_TRUE(cluster_->ready());
  EXPECT_EQ(Last("a", &v1::CoordinatorMessage::has_peers)->peers().sequence_epoch(), epoch + 1);
}

TEST_F(ClusterMembershipTest, AStandbyTakesTheEntryOfALostWorkerThatFitsIt) {
  for (const char* name : {"stage", "a", "b"}) Join(name);
  ApplyTables();
  // Three standbys: one a GPU, one too small for the stage's weights, one that fits.
  EXPECT_TRUE(Register("gpu", /*standby=*/true, "cuda:0").has_standby());
  EXPECT_TRUE(Register("small", /*standby=*/true, "cpu", /*memory=*/1024).has_standby());
  EXPECT_TRUE(Register("spare", /*standby=*/true).has_standby());
  int standbys = 0;
  const v1::ClusterStatus before = cluster_->Status();
  for (const v1::WorkerStatus& w : before.workers()) standbys += w.state() == v1::WORKER_STATE_STANDBY;
  EXPECT_EQ(standbys, 3);

  cluster_->OnSessionEnded(session_["stage"]);
  const v1::CoordinatorMessage* assigned = Last("spare", &v1::CoordinatorMessage::has_assignment);
  ASSERT_NE(assigned, nullptr);
  EXPECT_EQ(assigned->assignment().entry_name(), "stage");
  EXPECT_EQ(Last("gpu", &v1::CoordinatorMessage::has_assignment), nullptr);
  EXPECT_EQ(Last("small", &v1::CoordinatorMessage::has_assignment), nullptr);
  Loaded("spare");
  ApplyTables();
  EXPECT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
  EXPECT_EQ(Entry("stage").process_name(), "spare");

  // The replaced worker comes back under its name: it is told to stand by, not refused.
  EXPECT_TRUE(Register("stage").has_standby());
  // A second worker of that name while the first is a live standby is refused.
  v1::Register again;
  again.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  again.set_name("stage");
  again.set_standby(true);
  uint64_t id = 0;
  EXPECT_EQ(cluster_->Register(again, [](const v1::CoordinatorMessage&) { return true; }, &id).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(ClusterMembershipTest, AStandbyRegisteringAfterTheLossTakesTheEntryAtOnce) {
  for (const char* name : {"stage", "a", "b"}) Join(name);
  ApplyTables();
  cluster_->OnSessionEnded(session_["stage"]);
  const v1::CoordinatorMessage reply = Register("spare", /*standby=*/true);
  ASSERT_TRUE(reply.has_assignment());
  EXPECT_EQ(reply.assignment().entry_name(), "stage");
  EXPECT_GT(reply.assignment().heartbeat_timeout_ms(), 0u);
}

TEST_F(ClusterMembershipTest, ALeavingStageIsDismissedOnceNoStepIsInFlight) {
  for (const char* name : {"stage", "a", "b"}) Join(name);
  ApplyTables();
  const uint64_t epoch = cluster_->epoch();
  cluster_->OnLeaving(session_["stage"]);
  EXPECT_FALSE(cluster_->ready());  // no new step starts
  EXPECT_THAT(cluster_->NotReadyReason(), ::testing::HasSubstr("'stage' is stopping (SIGTERM)"));
  EXPECT_EQ(cluster_->epoch(), epoch);  // its sequences are intact until it goes
  EXPECT_EQ(Last("stage", &v1::CoordinatorMessage::has_dismissed), nullptr);
  cluster_->Quiescent();  // the scheduler: no step in flight
  EXPECT_NE(Last("stage", &v1::CoordinatorMessage::has_dismissed), nullptr);
  cluster_->OnSessionEnded(session_["stage"]);  // it exits
  EXPECT_EQ(cluster_->epoch(), epoch + 1);
  EXPECT_THAT(cluster_->last_loss(), ::testing::HasSubstr("stopped (SIGTERM)"));
}

TEST_F(ClusterMembershipTest, ALeavingReplicatedExpertHostGoesAtOnceAndTheClusterStaysReady) {
  for (const char* name : {"stage", "a", "b"}) Join(name);
  ApplyTables();
  cluster_->OnLeaving(session_["b"]);
  EXPECT_NE(Last("b", &v1::CoordinatorMessage::has_dismissed), nullptr);
  EXPECT_TRUE(cluster_->ready());
  cluster_->OnSessionEnded(session_["b"]);
  EXPECT_TRUE(cluster_->ready());
}

TEST_F(ClusterMembershipTest, AGarbageDataAddressFailsItsWorkerAloneAndReachesNoPeer) {
  Join("stage");
  Join("a");
  ASSERT_TRUE(Register("b").has_assignment());
  v1::Ready ready;
  ready.set_checkpoint_fingerprint("fp");
  ready.set_data_address(std::string("\x00garbage\xff", 9));
  EXPECT_THAT(cluster_->OnReady(session_["b"], ready),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                                ::testing::HasSubstr("worker 'b': its data-plane address is unusable")));
  EXPECT_EQ(Entry("b").state(), v1::WORKER_STATE_FAILED);
  EXPECT_EQ(Entry("stage").state(), v1::WORKER_STATE_READY);
  EXPECT_EQ(Entry("a").state(), v1::WORKER_STATE_READY);
  for (const char* peer : {"stage", "a"}) {
    for (const v1::CoordinatorMessage& m : inbox_[peer]) {
      if (!m.has_peers()) continue;
      for (const v1::Peer& p : m.peers().peers()) EXPECT_NE(p.name(), "b") << "b's address reached " << peer;
    }
  }
  // The session ends (the worker was told why); b restarted with a good address joins.
  cluster_->OnSessionEnded(session_["b"]);
  Join("b");
  ApplyTables();
  EXPECT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
}

TEST_F(ClusterMembershipTest, AStoppingWorkerHandsItsEntryToAStandbyThatLoadsWhileItServes) {
  for (const char* name : {"stage", "a", "b"}) Join(name);
  ApplyTables();
  ASSERT_TRUE(Register("spare", /*standby=*/true).has_standby());
  const uint64_t epoch = cluster_->epoch();
  const uint64_t old_session = session_["stage"];
  cluster_->OnLeaving(old_session);
  const v1::CoordinatorMessage* assigned = Last("spare", &v1::CoordinatorMessage::has_assignment);
  ASSERT_NE(assigned, nullptr);
  EXPECT_EQ(assigned->assignment().entry_name(), "stage");
  // The stopping worker serves on while the standby loads: still ready, same epoch.
  EXPECT_TRUE(cluster_->ready());
  EXPECT_EQ(cluster_->epoch(), epoch);
  EXPECT_EQ(Last("stage", &v1::CoordinatorMessage::has_dismissed), nullptr);
  EXPECT_THAT(Entry("stage").message(), ::testing::HasSubstr("standby 'spare' is loading"));
  Loaded("spare");  // it takes over: the old worker is dismissed, a new epoch replays its sequences
  EXPECT_NE(Last("stage", &v1::CoordinatorMessage::has_dismissed), nullptr);
  EXPECT_EQ(cluster_->epoch(), epoch + 1);
  const v1::CoordinatorMessage* table = Last("spare", &v1::CoordinatorMessage::has_peers);
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->peers().sequence_epoch(), epoch + 1);
  ApplyTables();
  EXPECT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
  cluster_->OnSessionEnded(old_session);  // the old worker exits: nothing more happens
  EXPECT_TRUE(cluster_->ready());
  EXPECT_EQ(cluster_->epoch(), epoch + 1);
  EXPECT_EQ(Entry("stage").process_name(), "spare");
}

// A lost stage: a standby starts loading its entry, and the stage is restarted meanwhile.
class LostEntryRaceTest : public ClusterMembershipTest {
 protected:
  void LoseStageToALoadingStandby() {
    for (const char* name : {"stage", "a", "b"}) Join(name);
    ApplyTables();
    ASSERT_TRUE(Register("spare", /*standby=*/true).has_standby());
    cluster_->OnSessionEnded(session_["stage"]);
    ASSERT_NE(Last("spare", &v1::CoordinatorMessage::has_assignment), nullptr);
    // Back under its name while the standby loads: it loads too, it is not told to stand by.
    ASSERT_TRUE(Register("stage").has_assignment());
  }
  std::string Holder() { return Entry("stage").process_name(); }
};

TEST_F(LostEntryRaceTest, TheRestartedWorkerReadyFirstTakesItsEntryBack) {
  LoseStageToALoadingStandby();
  Loaded("stage");
  EXPECT_EQ(Holder(), "stage");
  EXPECT_EQ(closed_, std::set<std::string>{"spare"});  // the standby goes back to standing by
  ApplyTables();
  EXPECT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
}

TEST_F(LostEntryRaceTest, TheStandbyReadyFirstKeepsTheEntry) {
  LoseStageToALoadingStandby();
  Loaded("spare");
  EXPECT_EQ(Holder(), "spare");
  EXPECT_EQ(closed_, std::set<std::string>{"stage"});  // it will register again, as a standby
  ApplyTables();
  EXPECT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
}

}  // namespace
}  // namespace mmx::coordinator
