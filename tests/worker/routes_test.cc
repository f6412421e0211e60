#include "worker/routes.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plan/shard_config.h"
#include "base/status_macros.h"
#include "tests/testing/status_matchers.h"
#include "worker/worker_runtime.h"

namespace mmx::worker {
namespace {

using ::testing::ElementsAre;

// One layer, 4 experts: worker a (peer 1) holds 0-2, b (peer 2) holds 1-3, stage (peer 3) none.
absl::StatusOr<Routes> TwoHostRoutes() {
  absl::StatusOr<plan::ShardConfig> shard = plan::ParseShardConfig(R"(
model: /m
workers:
  - {name: stage, embedding: true, lm_head: true, attention: [0, 1]}
  - name: a
    experts: [{layers: [0, 1], ids: [0, 1, 2]}]
  - name: b
    experts: [{layers: [0, 1], ids: [1, 2, 3]}]
)");
  if (!shard.ok()) return shard.status();
  v1::PeerTable table;
  const std::pair<const char*, uint32_t> peers[] = {{"coordinator", 0}, {"a", 1}, {"b", 2}, {"stage", 3}};
  for (const auto& [name, id] : peers) {
    v1::Peer* p = table.add_peers();
    p->set_name(name);
    p->set_peer_id(id);
  }
  return BuildRoutes(*shard, table, /*num_layers=*/1, /*num_experts=*/4);
}

TEST(RoutesTest, HoldersListEveryReplica) {
  absl::StatusOr<Routes> routes = TwoHostRoutes();
  ASSERT_THAT(routes, testing::IsOk());
  const Routes& r = *routes;
  EXPECT_THAT(r.ExpertHolders(0, 0), ElementsAre(1u));
  EXPECT_THAT(r.ExpertHolders(0, 1), ElementsAre(1u, 2u));
  EXPECT_THAT(r.ExpertHolders(0, 3), ElementsAre(2u));
}

TEST(RoutesTest, ReplicatedExpertsGoToTheLessLoadedHost) {
  absl::StatusOr<Routes> routes = TwoHostRoutes();
  ASSERT_THAT(routes, testing::IsOk());
  const Routes& r = *routes;
  // Expert 0 (only on a) has 6 pairs; the replicated experts 1 and 2 both go to b, which
  // otherwise has only expert 3's single pair. plan/expert_routing.h's fixed rule would send 1 to a.
  const std::vector<int> pairs = {0, 0, 0, 0, 0, 0, 1, 1, 2, 3};
  EXPECT_THAT(ChooseExpertHosts(r, 0, pairs, /*self=*/3), ElementsAre(1u, 2u, 2u, 2u));
  // Mirror image: expert 3 is heavy, so the replicas go to a.
  const std::vector<int> mirror = {3, 3, 3, 3, 3, 3, 1, 1, 2, 0};
  EXPECT_THAT(ChooseExpertHosts(r, 0, mirror, 3), ElementsAre(1u, 1u, 1u, 2u));
}

TEST(RoutesTest, HeaviestReplicatedExpertIsPlacedFirstAndSplitsEvenly) {
  absl::StatusOr<Routes> routes = TwoHostRoutes();
  ASSERT_THAT(routes, testing::IsOk());
  const Routes& r = *routes;
  // Only replicated experts: 1 has 5 pairs, 2 has 4. They must land on different hosts.
  const std::vector<int> pairs = {1, 1, 1, 1, 1, 2, 2, 2, 2};
  const std::vector<transport::PeerId> host = ChooseExpertHosts(r, 0, pairs, 3);
  EXPECT_EQ(host[0], 0u);
  EXPECT_EQ(host[3], 0u);
  EXPECT_NE(host[1], host[2]);
  EXPECT_EQ(host[1], 1u);  // ties go to the first holder in config order
}

TEST(RoutesTest, AHolderThatIsSelfKeepsItsPairs) {
  absl::StatusOr<Routes> routes = TwoHostRoutes();
  ASSERT_THAT(routes, testing::IsOk());
  const Routes& r = *routes;
  // Worker a dispatching (as if it ran attention): its replicas stay local even when loaded.
  const std::vector<int> pairs = {0, 0, 0, 0, 0, 0, 1, 2, 3};
  EXPECT_THAT(ChooseExpertHosts(r, 0, pairs, /*self=*/1), ElementsAre(1u, 1u, 1u, 2u));
}

TEST(RoutesTest, TableWithoutAWorkerIsRefused) {
  absl::StatusOr<plan::ShardConfig> shard = plan::ParseShardConfig(R"(
model: /m
workers:
  - {name: stage, embedding: true, lm_head: true, attention: [0, 1], experts: [{layers: [0, 1], ids: all}]}
)");
  ASSERT_THAT(shard, testing::IsOk());
  v1::PeerTable table;
  EXPECT_THAT(BuildRoutes(*shard, table, 1, 4).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("lacks worker 'stage'")));
}

TEST(RoutesTest, EachGroupRoutesToItsOwnStagesOverTheSharedExperts) {
  absl::StatusOr<plan::ShardConfig> shard = plan::ParseShardConfig(R"(
model: /m
workers:
  - {name: a0, group: a, embedding: true, attention: [0, 1]}
  - {name: a1, group: a, attention: [1, 2], lm_head: true, experts: [{layers: [0, 2], ids: [0]}]}
  - {name: b, group: b, embedding: true, attention: [0, 2], lm_head: true}
  - {name: x, experts: [{layers: [0, 2], ids: all}]}
)");
  ASSERT_THAT(shard, testing::IsOk());
  v1::PeerTable table;
  const std::pair<const char*, uint32_t> peers[] = {{"coordinator", 0}, {"a0", 1}, {"a1", 2}, {"b", 3}, {"x", 4}};
  for (const auto& [name, id] : peers) {
    v1::Peer* p = table.add_peers();
    p->set_name(name);
    p->set_peer_id(id);
  }
  absl::StatusOr<Routes> a = BuildRoutes(*shard, table, 2, 4, "a");
  absl::StatusOr<Routes> b = BuildRoutes(*shard, table, 2, 4, "b");
  ASSERT_THAT(a, testing::IsOk());
  ASSERT_THAT(b, testing::IsOk());
  EXPECT_EQ(a->head, 1u);
  EXPECT_EQ(a->tail, 2u);
  EXPECT_THAT(a->attention_owner, ElementsAre(1u, 2u));
  EXPECT_EQ(b->head, 3u);
  EXPECT_EQ(b->tail, 3u);
  EXPECT_THAT(b->attention_owner, ElementsAre(3u, 3u));
  // Experts are shared: group b's stage dispatches expert 0 to a1 or x alike.
  EXPECT_THAT(b->ExpertHolders(1, 0), ElementsAre(2u, 4u));
  EXPECT_THAT(b->ExpertHolders(1, 3), ElementsAre(4u));
}

// A worker left to choose (no --busy-poll-us) spins while it waits only where its host's cores
// are its own: the peer table's entry for it says.
TEST(AutomaticBusyPollTest, SpinsOnlyWhereTheHostsCoresAreNotShared) {
  v1::PeerTable table;
  v1::Peer* own = table.add_peers();
  own->set_peer_id(3);
  v1::Peer* shared = table.add_peers();
  shared->set_peer_id(4);
  shared->set_shares_cores(true);
  EXPECT_EQ(AutomaticBusyPoll(table, 3), kAutomaticBusyPoll);
  EXPECT_EQ(AutomaticBusyPoll(table, 4), absl::ZeroDuration());
  EXPECT_EQ(AutomaticBusyPoll(table, 5), absl::ZeroDuration());  // not in the table
}

}  // namespace
}  // namespace mmx::worker
