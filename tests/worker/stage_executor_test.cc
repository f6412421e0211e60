// The stage executor and the expert host over InprocTransport, no processes: a stage holding
// every layer, the embedding, lm_head and experts 0-3, and an expert host holding experts 4-7 of
// the golden tiny-a model. The test plays the coordinator with the scheduler's own step client.
#include "worker/stage_executor.h"

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/step_client.h"
#include "coordinator/step_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plan/shard_config.h"
#include "tests/testing/golden.h"
#include "tests/testing/status_matchers.h"
#include "transport/inproc_transport.h"
#include "transport/message_keys.h"
#include "worker/expert_host.h"
#include "worker/loaded_shard.h"
#include "worker/routes.h"

namespace mmx::worker {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;
using ::mmx::transport::InboxKey;
using ::mmx::transport::MessageKind;

constexpr transport::ClusterToken kToken{0x5eed, 1};
constexpr transport::PeerId kCoordinator = 0, kStage = 1, kExperts = 2;
constexpr float kTolerance = 5e-4f;  // the golden README's fp32 figure

// Who holds what. `experts_held` is what the expert host loads; the stage routes by `config`,
// so the two can be made to disagree.
std::string ShardYaml(const std::string& experts_held) {
  return "model: " + testing::GoldenDir() +
         "\nworkers:\n"
         "  - {name: stage, embedding: true, attention: [0, 8], lm_head: true,\n"
         "     experts: [{layers: [0, 8], ids: [0, 1, 2, 3]}]}\n"
         "  - {name: experts, experts: [{layers: [0, 8], ids: " + experts_held + "}]}\n";
}

class StageExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override { Start("[4, 5, 6, 7]"); }

  // Loads the shards and connects coordinator <-> stage <-> expert host.
  void Start(const std::string& experts_held) {
    absl::StatusOr<plan::ShardConfig> config = plan::ParseShardConfig(ShardYaml("[4, 5, 6, 7]"));
    absl::StatusOr<plan::ShardConfig> held = plan::ParseShardConfig(ShardYaml(experts_held));
    ASSERT_THAT(config, IsOk());
    ASSERT_THAT(held, IsOk());
    auto stage_shard = LoadShard(testing::GoldenDir(), config->workers[0], model::ExpertDType::kBf16, nullptr);
    auto expert_shard = LoadShard(testing::GoldenDir(), held->workers[1], model::ExpertDType::kBf16, nullptr);
    ASSERT_THAT(stage_shard, IsOk());
    ASSERT_THAT(expert_shard, IsOk());
    stage_shard_ = *std::move(stage_shard);
    expert_shard_ = *std::move(expert_shard);

    fabric_ = std::make_shared<transport::InprocFabric>();
    coordinator_ = transport::InprocTransport::Create(fabric_, "coordinator", {kCoordinator, kToken}).value();
    stage_ = transport::InprocTransport::Create(fabric_, "stage", {kStage, kToken}).value();
    experts_ = transport::InprocTransport::Create(fabric_, "experts", {kExperts, kToken}).value();
    ASSERT_THAT(coordinator_->Connect(kStage, "stage"), IsOk());
    ASSERT_THAT(stage_->Connect(kCoordinator, "coordinator"), IsOk());
    ASSERT_THAT(stage_->Connect(kExperts, "experts"), IsOk());
    ASSERT_THAT(experts_->Connect(kStage, "stage"), IsOk());

    v1::PeerTable table;
    for (const auto& [name, id] : {std::pair<const char*, transport::PeerId>{"coordinator", kCoordinator},
                                   {"stage", kStage}, {"experts", kExperts}}) {
      v1::Peer* peer = table.add_peers();
      peer->set_name(name);
      peer->set_peer_id(id);
    }
    const model::ModelConfig& c = stage_shard_->config();
    absl::StatusOr<Routes> routes = BuildRoutes(*config, table, c.num_hidden_layers, c.num_local_experts);
    ASSERT_THAT(routes, IsOk());
    routes_ = *routes;
    executor_ = std::make_unique<StageExecutor>(stage_shard_.get(), stage_.get(), kStage, routes_, absl::Seconds(60));
    executor_->SetKvDType(DType::kF32);  // golden-exact
  }

  // The expert host's dispatch loop, as worker_runtime runs it.
  void ServeExperts() {
    expert_thread_ = std::jthread([this](std::stop_token stop) {
      while (true) {
        absl::StatusOr<transport::Message> m =
            experts_->ReceiveAny(InboxKey(MessageKind::kDispatch), absl::InfiniteDuration(), stop);
        if (!m.ok()) return;
        (void)HandleDispatch(*expert_shard_, experts_.get(), *m);
        ++dispatches_;
      }
    });
  }

  void TearDown() override {
    if (expert_thread_.joinable()) {
      expert_thread_.request_stop();
      expert_thread_.join();
    }
  }

  struct StepOutcome {
    absl::StatusOr<std::vector<coordinator::MicroBatchResult>> replies;
    absl::Status handled;  // what HandleSteps returned
  };

  // The coordinator sends the micro-batches; the stage handles them as its step loop would.
  StepOutcome RunStep(const std::vector<coordinator::OutgoingMicroBatch>& micro_batches) {
    coordinator::StepClient client(coordinator_.get(), stage_shard_->wire_limits());
    auto replies = std::async(std::launch::async, [&] {
      return client.Run(kStage, micro_batches, absl::Seconds(60));
    });
    StepOutcome outcome{absl::UnknownError("no reply"), absl::OkStatus()};
    std::vector<transport::Message> messages;
    for (size_t i = 0; i < micro_batches.size(); ++i) {
      absl::StatusOr<transport::Message> m = stage_->ReceiveAny(InboxKey(MessageKind::kStep), absl::Seconds(30));
      if (!m.ok()) {
        outcome.handled = m.status();
        coordinator_->Shutdown();  // ends the client's wait
        replies.wait();
        return outcome;
      }
      messages.push_back(*std::move(m));
    }
    outcome.handled = executor_->HandleSteps(messages);
    outcome.replies = replies.get();
    return outcome;
  }

  static coordinator::SequenceStep Prefill(uint64_t id, const std::vector<int32_t>& prompt) {
    coordinator::SequenceStep s;
    s.sequence_id = id;
    s.tokens = prompt;
    s.return_logits = true;
    return s;
  }

  std::unique_ptr<LoadedShard> stage_shard_, expert_shard_;
  std::shared_ptr<transport::InprocFabric> fabric_;
  std::unique_ptr<transport::InprocTransport> coordinator_, stage_, experts_;
  Routes routes_;
  std::unique_ptr<StageExecutor> executor_;
  std::jthread expert_thread_;
  std::atomic<int> dispatches_{0};
};

TEST_F(StageExecutorTest, LocalAndRemoteExpertsGiveTheGoldenLogits) {
  ServeExperts();
  auto golden = testing::ReadGoldenFile("prefill_logits.safetensors");
  // Two micro-batches of one step, run interleaved layer by layer.
  StepOutcome out = RunStep({coordinator::EncodeMicroBatch(7, 0, 2, {Prefill(1, testing::GoldenPrompt("p64"))}),
                             coordinator::EncodeMicroBatch(7, 1, 2, {Prefill(2, testing::GoldenPrompt("p5"))})});
  ASSERT_THAT(out.handled, IsOk());
  ASSERT_THAT(out.replies, IsOk());
  ASSERT_EQ(out.replies->size(), 2u);
  const std::vector<float>& p64 = (*out.replies)[0].logits.at(1);
  const std::vector<float>& p5 = (*out.replies)[1].logits.at(2);
  ASSERT_EQ(p64.size(), golden.at("p64").f32.size());
  ASSERT_EQ(p5.size(), golden.at("p5").f32.size());
  EXPECT_LE(testing::MaxAbsDiff(p64.data(), golden.at("p64").f32.data(), p64.size()), kTolerance);
  EXPECT_LE(testing::MaxAbsDiff(p5.data(), golden.at("p5").f32.data(), p5.size()), kTolerance);
  // Both halves of the MoE ran: the expert host answered every layer of both micro-batches and
  // reported the expert weights it read; the stage ran the rest.
  EXPECT_EQ(dispatches_.load(), 2 * 8);
  for (const coordinator::MicroBatchResult& r : *out.replies) {
    int64_t expert_host_bytes = 0, stage_bytes = 0;
    for (const v1::WorkerTime& t : r.timings) (t.peer_id() == kExperts ? expert_host_bytes : stage_bytes) += t.weight_bytes();
    EXPECT_GT(expert_host_bytes, 0);
    EXPECT_GT(stage_bytes, expert_host_bytes);
  }
  EXPECT_EQ(executor_->live_sequences(), 2u);

  // The next step decodes both from the state the first one left, then frees sequence 2.
  coordinator::SequenceStep decode = Prefill(1, {testing::GoldenPrompt("p64")[0]});
  decode.start_position = 64;
  StepOutcome next = RunStep({coordinator::EncodeMicroBatch(8, 0, 1, {decode}, /*freed=*/{2})});
  ASSERT_THAT(next.handled, IsOk());
  ASSERT_THAT(next.replies, IsOk());
  EXPECT_EQ((*next.replies)[0].tokens.count(1), 1u);
  EXPECT_EQ(executor_->live_sequences(), 1u);
}

// Several steps in flight: Serve runs a step's micro-batches interleaved, its sibling taken from
// the inbox, and leaves the next step there for the next Serve; each gives the golden logits.
TEST_F(StageExecutorTest, ServeTakesTheSiblingsOfItsStepAndLeavesTheNextStepForLater) {
  ServeExperts();
  auto golden = testing::ReadGoldenFile("prefill_logits.safetensors");
  coordinator::StepClient client(coordinator_.get(), stage_shard_->wire_limits());
  const std::vector<coordinator::OutgoingMicroBatch> a = {
      coordinator::EncodeMicroBatch(7, 0, 2, {Prefill(1, testing::GoldenPrompt("p64"))}),
      coordinator::EncodeMicroBatch(7, 1, 2, {Prefill(3, testing::GoldenPrompt("p64"))})};
  const std::vector<coordinator::OutgoingMicroBatch> b = {
      coordinator::EncodeMicroBatch(8, 0, 1, {Prefill(2, testing::GoldenPrompt("p5"))})};
  ASSERT_THAT(client.Send(kStage, {a[0]}), IsOk());
  ASSERT_THAT(client.Send(kStage, b), IsOk());
  ASSERT_THAT(client.Send(kStage, {a[1]}), IsOk());  // the sibling comes after the next step
  StepInbox inbox(stage_.get());
  absl::StatusOr<transport::Message> first = inbox.Next(absl::Seconds(30));
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(executor_->Serve(*std::move(first), inbox), IsOk());
  EXPECT_EQ(executor_->live_sequences(), 2u);  // step 7's two sequences, not step 8's
  absl::StatusOr<transport::Message> next = inbox.Next(absl::Seconds(30));
  ASSERT_THAT(next, IsOk());
  EXPECT_THAT(executor_->Serve(*std::move(next), inbox), IsOk());
  EXPECT_EQ(executor_->live_sequences(), 3u);
  std::map<uint64_t, std::vector<float>> logits;  // by sequence
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<transport::Message> reply = client.NextReply(absl::Now() + absl::Seconds(30), {});
    ASSERT_THAT(reply, IsOk());
    const coordinator::ReplyId id = *coordinator::PeekReply(*reply);
    const auto& sent = id.step_id == 7 ? a[id.micro_batch] : b[0];
    auto result = coordinator::DecodeReply(*reply, sent.header, stage_shard_->wire_limits());
    ASSERT_THAT(result, IsOk());
    for (const auto& [sequence, rows] : result->logits) logits[sequence] = rows;
  }
  for (const auto& [sequence, prompt] : {std::pair<uint64_t, const char*>{1, "p64"}, {3, "p64"}, {2, "p5"}}) {
    const std::vector<float>& got = logits[sequence];
    ASSERT_EQ(got.size(), golden.at(prompt).f32.size()) << "sequence " << sequence;
    EXPECT_LE(testing::MaxAbsDiff(got.data(), golden.at(prompt).f32.data(), got.size()), kTolerance);
  }
}

// A message this worker only passes through (here: rows for the tail) is taken between layers,
// not after the step in progress: the worker downstream (here the coordinator) waits for it.
TEST_F(StageExecutorTest, AMessageOnlyPassingThroughIsTakenBetweenLayers) {
  ServeExperts();
  coordinator::StepClient client(coordinator_.get(), stage_shard_->wire_limits());
  ASSERT_THAT(client.Send(kStage, {coordinator::EncodeMicroBatch(7, 0, 1, {Prefill(1, testing::GoldenPrompt("p64"))})}),
              IsOk());
  coordinator::SequenceStep row;
  row.sequence_id = 2;
  row.tokens = {0};  // one row
  row.sample = true;
  coordinator::OutgoingMicroBatch tail = coordinator::EncodeMicroBatch(8, 0, 1, {row});
  const model::ModelConfig& c = stage_shard_->config();
  tail.header.set_layer(c.num_hidden_layers);
  const std::vector<float> hidden(c.hidden_size, 0.25f);
  ASSERT_THAT(coordinator_->Send(kStage, InboxKey(MessageKind::kStep), tail.header.SerializeAsString(), hidden.data(),
                                 hidden.size() * sizeof(float)),
              IsOk());
  StepInbox inbox(stage_.get());
  absl::StatusOr<transport::Message> first = inbox.Next(absl::Seconds(30));
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(executor_->Serve(*std::move(first), inbox), IsOk());
  EXPECT_FALSE(inbox.PollFor([](const transport::Message&) { return true; }).has_value());
  std::vector<uint64_t> order;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<transport::Message> reply = client.NextReply(absl::Now() + absl::Seconds(30), {});
    ASSERT_THAT(reply, IsOk());
    order.push_back(coordinator::PeekReply(*reply)->step_id);
    if (order.back() == 8) {
      auto result = coordinator::DecodeReply(*reply, tail.header, stage_shard_->wire_limits());
      ASSERT_THAT(result, IsOk());
      EXPECT_EQ(result->tokens.count(2), 1u);
    }
  }
  EXPECT_EQ(order, (std::vector<uint64_t>{8, 7}));  // the tail rows did not wait for step 7's layers
}

TEST_F(StageExecutorTest, AMicroBatchNamingASequenceInProgressIsRefusedAndTheOtherGoesOn) {
  ServeExperts();
  auto golden = testing::ReadGoldenFile("prefill_logits.safetensors");
  coordinator::StepClient client(coordinator_.get(), stage_shard_->wire_limits());
  coordinator::SequenceStep again = Prefill(1, {5});
  again.start_position = 64;
  // A coordinator that put sequence 1 in both micro-batches, and freed it in the second.
  const std::vector<coordinator::OutgoingMicroBatch> step = {
      coordinator::EncodeMicroBatch(7, 0, 2, {Prefill(1, testing::GoldenPrompt("p64"))}),
      coordinator::EncodeMicroBatch(7, 1, 2, {again}, /*freed=*/{1})};
  ASSERT_THAT(client.Send(kStage, step), IsOk());
  StepInbox inbox(stage_.get());
  absl::StatusOr<transport::Message> first = inbox.Next(absl::Seconds(30));
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(executor_->Serve(*std::move(first), inbox),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already in a micro-batch in progress")));
  bool golden_seen = false, refused_seen = false;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<transport::Message> reply = client.NextReply(absl::Now() + absl::Seconds(30), {});
    ASSERT_THAT(reply, IsOk());
    if (coordinator::PeekReply(*reply)->micro_batch == 1) {
      EXPECT_THAT(coordinator::DecodeReply(*reply, step[1].header, stage_shard_->wire_limits()).status(),
                  StatusIs(absl::StatusCode::kFailedPrecondition));
      refused_seen = true;
      continue;
    }
    auto result = coordinator::DecodeReply(*reply, step[0].header, stage_shard_->wire_limits());
    ASSERT_THAT(result, IsOk());
    const std::vector<float>& p64 = result->logits.at(1);
    EXPECT_LE(testing::MaxAbsDiff(p64.data(), golden.at("p64").f32.data(), p64.size()), kTolerance);
    golden_seen = true;
  }
  EXPECT_TRUE(golden_seen);
  EXPECT_TRUE(refused_seen);
  // The state of the freed sequence went once its micro-batch left, not under it.
  EXPECT_EQ(executor_->live_sequences(), 0u);
}

TEST_F(StageExecutorTest, AHeaderThatDoesNotParseFailsWithoutAReply) {
  ServeExperts();
  ASSERT_THAT(coordinator_->Send(kStage, InboxKey(MessageKind::kStep), "not a step header", nullptr, 0), IsOk());
  absl::StatusOr<transport::Message> m = stage_->ReceiveAny(InboxKey(MessageKind::kStep), absl::Seconds(30));
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(executor_->HandleStep(*m), StatusIs(absl::StatusCode::kDataLoss));
  // No step id to answer by: nothing reached the coordinator (HandleStep sends before returning).
  EXPECT_THAT(coordinator_->ReceiveAny(InboxKey(MessageKind::kTokens), absl::ZeroDuration()).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(dispatches_.load(), 0);
}

TEST_F(StageExecutorTest, AHeaderThatDisagreesWithItsPayloadIsAnsweredWithItsError) {
  ServeExperts();
  coordinator::OutgoingMicroBatch mb = coordinator::EncodeMicroBatch(3, 0, 1, {Prefill(1, {1, 2, 3})});
  mb.tokens.pop_back();  // the header says three tokens, the payload holds two
  StepOutcome out = RunStep({mb});
  EXPECT_THAT(out.handled, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(out.replies.status(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("worker stage")));
  EXPECT_EQ(executor_->live_sequences(), 0u);
}

TEST_F(StageExecutorTest, AWorkersErrorReachesTheCoordinatorWithItsCode) {
  ServeExperts();
  // Sampling parameters the tail refuses: its INVALID_ARGUMENT, not UNAVAILABLE.
  coordinator::SequenceStep hot = Prefill(1, {5, 6});
  hot.sampling.temperature = -1;
  StepOutcome bad = RunStep({coordinator::EncodeMicroBatch(1, 0, 1, {hot})});
  EXPECT_THAT(bad.handled, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad.replies.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature must be >= 0")));
  // A decode for a sequence this stage never saw: FAILED_PRECONDITION saying so.
  coordinator::SequenceStep unknown = Prefill(9, {5});
  unknown.start_position = 12;
  StepOutcome no_state = RunStep({coordinator::EncodeMicroBatch(2, 0, 1, {unknown})});
  EXPECT_THAT(no_state.replies.status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no state for it")));
}

TEST_F(StageExecutorTest, AnExpertHostsErrorKeepsItsCodeAcrossTwoHops) {
  // The expert host holds 4-6 where the stage's config says 4-7: it refuses dispatches naming 7.
  TearDown();
  Start("[4, 5, 6]");
  ServeExperts();
  StepOutcome out = RunStep({coordinator::EncodeMicroBatch(1, 0, 1, {Prefill(1, testing::GoldenPrompt("p64"))})});
  EXPECT_THAT(out.handled, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(out.replies.status(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expert host 2")));
}

TEST_F(StageExecutorTest, AnExpertHostThatIsGoneFailsTheStepAsUnavailable) {
  experts_.reset();  // detaches from the fabric: sends to it fail
  StepOutcome out = RunStep({coordinator::EncodeMicroBatch(1, 0, 1, {Prefill(1, testing::GoldenPrompt("p64"))})});
  EXPECT_THAT(out.handled, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(out.replies.status(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(StageExecutorTest, AbortWakesAStepWaitingOnASilentExpertHost) {
  // No dispatch loop: the host receives the rows and never answers.
  coordinator::StepClient client(coordinator_.get(), stage_shard_->wire_limits());
  const std::vector<coordinator::OutgoingMicroBatch> step = {
      coordinator::EncodeMicroBatch(1, 0, 1, {Prefill(1, testing::GoldenPrompt("p64"))})};
  auto replies = std::async(std::launch::async, [&] { return client.Run(kStage, step, absl::Seconds(60)); });
  absl::StatusOr<transport::Message> m = stage_->ReceiveAny(InboxKey(MessageKind::kStep), absl::Seconds(30));
  ASSERT_THAT(m, IsOk());
  auto handled = std::async(std::launch::async, [&] { return executor_->HandleStep(*m); });
  // The stage is waiting for this dispatch's combine (reply timeout 60 s) when it is aborted.
  ASSERT_THAT(experts_->ReceiveAny(InboxKey(MessageKind::kDispatch), absl::Seconds(30)), IsOk());
  executor_->Abort();
  EXPECT_THAT(handled.get(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("peer table was replaced")));
  EXPECT_THAT(replies.get().status(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(StageExecutorTest, ASilentExpertHostFailsTheStepAtTheReplyTimeout) {
  executor_ = std::make_unique<StageExecutor>(stage_shard_.get(), stage_.get(), kStage, routes_, absl::Milliseconds(200));
  executor_->SetKvDType(DType::kF32);
  StepOutcome out = RunStep({coordinator::EncodeMicroBatch(1, 0, 1, {Prefill(1, testing::GoldenPrompt("p64"))})});
  EXPECT_THAT(out.handled, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("sent no combine")));
  EXPECT_THAT(out.replies.status(), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace mmx::worker
