// StepsInFlight against a worker the test plays over InprocTransport.
#include "coordinator/steps_in_flight.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

constexpr transport::ClusterToken kToken{5, 1};
constexpr transport::PeerId kCoordinator = 0, kWorker = 1;

class StepsInFlightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fabric = std::make_shared<transport::InprocFabric>();
    coordinator_ = transport::InprocTransport::Create(fabric, "coordinator", {kCoordinator, kToken}).value();
    worker_ = transport::InprocTransport::Create(fabric, "worker", {kWorker, kToken}).value();
    ASSERT_THAT(coordinator_->Connect(kWorker, "worker"), IsOk());
    ASSERT_THAT(worker_->Connect(kCoordinator, "coordinator"), IsOk());
    steps_ = std::make_unique<StepsInFlight>(StepClient(coordinator_.get(), transport::WireLimits{8, 100, 2, 4}));
  }

  // A step of `wave` with one sampling sequence per micro-batch (new requests, ids from 1).
  StepsInFlight::Step MakeStep(int wave, uint64_t step_id, int micro_batches) {
    StepsInFlight::Step step;
    step.wave = wave;
    step.step_id = step_id;
    step.members.resize(micro_batches);
    step.plan.micro_batches.resize(micro_batches);
    for (int m = 0; m < micro_batches; ++m) {
      Request::Params p;
      p.prompt = {1};
      auto r = std::make_shared<Request>(next_id_++, p);
      requests_.push_back(r);
      step.members[m].push_back(r);
      step.plan.micro_batches[m].push_back({0, 0, 1, true, true});
      SequenceStep s;
      s.sequence_id = r->id();
      s.tokens = {1};
      step.sent.push_back(EncodeMicroBatch(step_id, m, micro_batches, {s}));
    }
    return step;
  }
  // The worker answers micro-batch `m` of `step` (whose sequence is `sequence_id`).
  void Answer(uint64_t step, uint32_t m, uint64_t sequence_id, absl::Status error = absl::OkStatus()) {
    v1::TokensHeader t;
    t.set_step_id(step);
    t.set_micro_batch(m);
    if (error.ok()) {
      v1::SampledToken* token = t.add_tokens();
      token->set_sequence_id(sequence_id);
      token->set_token_id(42);
    } else {
      t.set_error(std::string(error.message()));
      t.set_error_code(static_cast<int>(error.code()));
    }
    ASSERT_THAT(worker_->Send(kCoordinator, InboxKey(MessageKind::kTokens), t.SerializeAsString(), nullptr, 0), IsOk());
  }
  absl::StatusOr<std::optional<StepsInFlight::Step>> Receive() {
    return steps_->Receive(absl::Now() + absl::Seconds(10), {});
  }
  // The steps the worker got, in arrival order.
  std::vector<uint64_t> Arrived(int n) {
    std::vector<uint64_t> ids;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<transport::Message> m = worker_->ReceiveAny(InboxKey(MessageKind::kStep), absl::Seconds(10));
      EXPECT_THAT(m.status(), IsOk());
      if (!m.ok()) break;
      v1::StepHeader h;
      h.ParseFromString(m->header);
      ids.push_back(h.step_id());
    }
    return ids;
  }

  std::unique_ptr<transport::InprocTransport> coordinator_, worker_;
  std::unique_ptr<StepsInFlight> steps_;
  std::vector<std::shared_ptr<Request>> requests_;
  uint64_t next_id_ = 1;
};

TEST_F(StepsInFlightTest, TwoStepsAreOutAtOnceAndEachIsDoneWhenAllItsMicroBatchesReplied) {
  ASSERT_THAT(steps_->Launch(MakeStep(0, 1, 2), kWorker), IsOk());
  ASSERT_THAT(steps_->Launch(MakeStep(1, 2, 2), kWorker), IsOk());
  EXPECT_EQ(Arrived(4), (std::vector<uint64_t>{1, 1, 2, 2}));
  EXPECT_EQ(steps_->size(), 2u);
  EXPECT_TRUE(steps_->busy(0));
  EXPECT_TRUE(steps_->busy(1));
  for (const auto& r : requests_) EXPECT_TRUE(r->in_flight);
  EXPECT_EQ(steps_->oldest_step(), 1u);

  // The second step's replies come first, in reverse order.
  Answer(2, 1, 4);
  auto first = Receive();
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_FALSE(first->has_value());  // half of step 2
  Answer(2, 0, 3);
  auto done = Receive();
  ASSERT_THAT(done.status(), IsOk());
  ASSERT_TRUE(done->has_value());
  const StepsInFlight::Step& step = **done;
  EXPECT_EQ(step.step_id, 2u);
  EXPECT_EQ(step.wave, 1);
  ASSERT_EQ(step.replies.size(), 2u);
  ASSERT_THAT(step.replies[0]->status(), IsOk());
  EXPECT_EQ((*step.replies[0])->tokens.at(3).token_id(), 42);
  EXPECT_TRUE(requests_[0]->in_flight);  // step 1 still out
  EXPECT_FALSE(requests_[2]->in_flight);
  EXPECT_FALSE(steps_->busy(1));
  EXPECT_EQ(steps_->size(), 1u);
}

TEST_F(StepsInFlightTest, RepliesToStepsNotHeldAndRepeatedRepliesAreDropped) {
  ASSERT_THAT(steps_->Launch(MakeStep(0, 7, 2), kWorker), IsOk());
  Answer(99, 0, 1);  // no such step
  Answer(7, 0, 1);
  Answer(7, 0, 1);   // again
  for (int i = 0; i < 3; ++i) {
    auto r = Receive();
    ASSERT_THAT(r.status(), IsOk());
    EXPECT_FALSE(r->has_value());
  }
  Answer(7, 1, 2);
  auto done = Receive();
  ASSERT_THAT(done.status(), IsOk());
  EXPECT_TRUE(done->has_value());
}

TEST_F(StepsInFlightTest, APeerUnavailableIsReturnedAtOnceOtherErrorsBelongToTheStep) {
  ASSERT_THAT(steps_->Launch(MakeStep(0, 1, 2), kWorker), IsOk());
  Answer(1, 0, 0, absl::FailedPreconditionError("sequence 1 at position 0 but this stage holds 3 tokens of it"));
  auto half = Receive();
  ASSERT_THAT(half.status(), IsOk());
  EXPECT_FALSE(half->has_value());
  Answer(1, 1, 2);
  auto done = Receive();
  ASSERT_THAT(done.status(), IsOk());
  ASSERT_TRUE(done->has_value());
  EXPECT_THAT((*done)->replies[0]->status(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("holds 3")));
  EXPECT_THAT((*done)->replies[1]->status(), IsOk());

  ASSERT_THAT(steps_->Launch(MakeStep(0, 2, 2), kWorker), IsOk());
  Answer(2, 1, 0, absl::UnavailableError("ucp_am_send_nbx to peer 2: Endpoint timeout"));
  EXPECT_THAT(Receive().status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Endpoint timeout")));
}

TEST_F(StepsInFlightTest, VoidedStepsLeaveTheirRequestsAndTheirRepliesAreDropped) {
  ASSERT_THAT(steps_->Launch(MakeStep(0, 1, 1), kWorker), IsOk());
  ASSERT_THAT(steps_->Launch(MakeStep(1, 2, 1), kWorker), IsOk());
  steps_->VoidAll();
  EXPECT_EQ(steps_->size(), 0u);
  EXPECT_EQ(steps_->oldest_sent(), absl::InfiniteFuture());
  for (const auto& r : requests_) EXPECT_FALSE(r->in_flight);
  Answer(1, 0, 1);
  auto r = Receive();
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_FALSE(r->has_value());
}

TEST_F(StepsInFlightTest, AWaitEndsAtItsDeadlineOrWhenStopped) {
  ASSERT_THAT(steps_->Launch(MakeStep(0, 1, 1), kWorker), IsOk());
  auto timed_out = steps_->Receive(absl::Now() + absl::Milliseconds(20), {});
  ASSERT_THAT(timed_out.status(), IsOk());
  EXPECT_FALSE(timed_out->has_value());
  std::stop_source stop;
  stop.request_stop();
  auto stopped = steps_->Receive(absl::InfiniteFuture(), stop.get_token());
  ASSERT_THAT(stopped.status(), IsOk());
  EXPECT_FALSE(stopped->has_value());
  EXPECT_EQ(steps_->size(), 1u);
}

}  // namespace
}  // namespace mmx::coordinator
