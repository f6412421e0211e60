// An expert host lost in the middle of a layer, its experts held by another host too: the stage
// routes around it (StageExecutor::RouteAround, as worker_runtime does on a PeerLost with
// replicated set), sends the lost host's rows of that layer again to the other holder, and the
// step gives the golden logits. InprocTransport, no processes; the golden tiny-a model.
#include <atomic>
#include <future>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "coordinator/step_client.h"
#include "coordinator/step_codec.h"
#include "gtest/gtest.h"
#include "plan/shard_config.h"
#include "tests/testing/golden.h"
#include "tests/testing/shards.h"
#include "tests/testing/status_matchers.h"
#include "transport/inproc_transport.h"
#include "transport/message_keys.h"
#include "worker/expert_host.h"
#include "worker/loaded_shard.h"
#include "worker/routes.h"
#include "worker/stage_executor.h"

namespace mmx::worker {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::transport::InboxKey;
using ::mmx::transport::MessageKind;

constexpr transport::ClusterToken kToken{0x5eed, 1};
constexpr transport::PeerId kCoordinator = 0, kStage = 1, kHostA = 2, kHostB = 3;

// Stage `stage` holds experts 0-3; hosts `a` and `b` both hold 4-7.
TEST(ExpertFailoverTest, AHostLostMidLayerIsRoutedAroundAndTheStepGivesTheGoldenLogits) {
  absl::StatusOr<plan::ShardConfig> config = plan::ParseShardConfig(testing::StageAndTwinHostsShard(testing::GoldenDir()));
  ASSERT_THAT(config, IsOk());
  auto stage_shard = LoadShard(testing::GoldenDir(), config->workers[0], model::ExpertDType::kBf16, nullptr);
  auto shard_a = LoadShard(testing::GoldenDir(), config->workers[1], model::ExpertDType::kBf16, nullptr);
  ASSERT_THAT(stage_shard, IsOk());
  ASSERT_THAT(shard_a, IsOk());

  auto fabric = std::make_shared<transport::InprocFabric>();
  auto coordinator = transport::InprocTransport::Create(fabric, "coordinator", {kCoordinator, kToken}).value();
  auto stage = transport::InprocTransport::Create(fabric, "stage", {kStage, kToken}).value();
  auto host_a = transport::InprocTransport::Create(fabric, "a", {kHostA, kToken}).value();
  auto host_b = transport::InprocTransport::Create(fabric, "b", {kHostB, kToken}).value();
  ASSERT_THAT(coordinator->Connect(kStage, "stage"), IsOk());
  ASSERT_THAT(stage->Connect(kCoordinator, "coordinator"), IsOk());
  for (auto [id, name] : {std::pair{kHostA, "a"}, std::pair{kHostB, "b"}}) ASSERT_THAT(stage->Connect(id, name), IsOk());
  ASSERT_THAT(host_a->Connect(kStage, "stage"), IsOk());
  ASSERT_THAT(host_b->Connect(kStage, "stage"), IsOk());

  v1::PeerTable table;
  for (auto [name, id] : {std::pair{"coordinator", kCoordinator}, {"stage", kStage}, {"a", kHostA}, {"b", kHostB}}) {
    v1::Peer* peer = table.add_peers();
    peer->set_name(name);
    peer->set_peer_id(id);
  }
  const model::ModelConfig& c = (*stage_shard)->config();
  absl::StatusOr<Routes> routes = BuildRoutes(*config, table, c.num_hidden_layers, c.num_local_experts);
  ASSERT_THAT(routes, IsOk());
  StageExecutor executor(stage_shard->get(), stage.get(), kStage, *routes, absl::Seconds(60));
  executor.SetKvDType(DType::kF32);  // golden-exact

  // Host a serves every dispatch. Host b takes its first one and dies with it: the stage is then
  // waiting for b's combine of that layer.
  std::atomic<int> served_by_a{0};
  std::jthread a([&](std::stop_token stop) {
    while (true) {
      absl::StatusOr<transport::Message> m = host_a->ReceiveAny(InboxKey(MessageKind::kDispatch), absl::InfiniteDuration(), stop);
      if (!m.ok()) return;
      ASSERT_THAT(HandleDispatch(**shard_a, host_a.get(), *m), IsOk());
      ++served_by_a;
    }
  });
  absl::Notification b_took_rows;
  std::thread b([&] {
    if (host_b->ReceiveAny(InboxKey(MessageKind::kDispatch), absl::Seconds(60)).ok()) b_took_rows.Notify();
  });

  coordinator::SequenceStep p64;
  p64.sequence_id = 1;
  p64.tokens = testing::GoldenPrompt("p64");
  p64.return_logits = true;
  const std::vector<coordinator::OutgoingMicroBatch> step = {coordinator::EncodeMicroBatch(1, 0, 1, {p64})};
  coordinator::StepClient client(coordinator.get(), (*stage_shard)->wire_limits());
  auto replies = std::async(std::launch::async, [&] { return client.Run(kStage, step, absl::Seconds(60)); });
  absl::StatusOr<transport::Message> m = stage->ReceiveAny(InboxKey(MessageKind::kStep), absl::Seconds(30));
  ASSERT_THAT(m, IsOk());
  auto handled = std::async(std::launch::async, [&] { return executor.HandleStep(*m); });

  ASSERT_TRUE(b_took_rows.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // What worker_runtime does on PeerLost{replicated}: route around, then disconnect (which
  // fails the wait for b's combine).
  executor.RouteAround(kHostB);
  stage->Disconnect(kHostB);
  b.join();

  ASSERT_THAT(handled.get(), IsOk());
  absl::StatusOr<std::vector<coordinator::MicroBatchResult>> out = replies.get();
  ASSERT_THAT(out, IsOk());
  const std::vector<float>& logits = (*out)[0].logits.at(1);
  auto golden = testing::ReadGoldenFile("prefill_logits.safetensors");
  ASSERT_EQ(logits.size(), golden.at("p64").f32.size());
  EXPECT_LE(testing::MaxAbsDiff(logits.data(), golden.at("p64").f32.data(), logits.size()), 5e-4f);
  // Host a ran every layer, b's lost rows of the first layer in a second dispatch.
  EXPECT_EQ(served_by_a.load(), c.num_hidden_layers + 1);
  host_a->Shutdown();
}

}  // namespace
}  // namespace mmx::worker
