#include "worker/step_inbox.h"

#include "gtest/gtest.h"
#include "mmx/v1/wire.pb.h"
#include "transport/inproc_transport.h"
#include "transport/message_keys.h"

namespace mmx::worker {
namespace {

class StepInboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fabric = std::make_shared<transport::InprocFabric>();
    a_ = *transport::InprocTransport::Create(fabric, "a", {1, 42});
    b_ = *transport::InprocTransport::Create(fabric, "b", {2, 42});
    ASSERT_TRUE(a_->Connect(2, "b").ok());
    ASSERT_TRUE(b_->Connect(1, "a").ok());
  }
  void SendStep(uint64_t step) {
    v1::StepHeader h;
    h.set_step_id(step);
    ASSERT_TRUE(a_->Send(2, transport::InboxKey(transport::MessageKind::kStep), h.SerializeAsString(), nullptr, 0).ok());
  }
  static uint64_t Step(const transport::Message& m) {
    v1::StepHeader h;
    h.ParseFromString(m.header);
    return h.step_id();
  }
  std::unique_ptr<transport::InprocTransport> a_, b_;
};

TEST_F(StepInboxTest, GivesMessagesInArrivalOrder) {
  SendStep(7);
  SendStep(8);
  StepInbox inbox(b_.get());
  absl::StatusOr<transport::Message> first = inbox.Next(absl::Seconds(1));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Step(*first), 7u);
  std::optional<transport::Message> second = inbox.Poll();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(Step(*second), 8u);
  EXPECT_FALSE(inbox.Poll().has_value());  // nothing more: Poll does not wait
}

TEST_F(StepInboxTest, APutBackMessageComesOutFirst) {
  SendStep(7);
  SendStep(8);
  StepInbox inbox(b_.get());
  std::optional<transport::Message> m = inbox.Poll();
  ASSERT_TRUE(m.has_value());
  inbox.PutBack(*std::move(m));
  absl::StatusOr<transport::Message> again = inbox.Next(absl::Seconds(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Step(*again), 7u);
  absl::StatusOr<transport::Message> next = inbox.Next(absl::Seconds(1));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(Step(*next), 8u);
}

TEST_F(StepInboxTest, TimesOutWhenNothingComes) {
  StepInbox inbox(b_.get());
  EXPECT_TRUE(absl::IsDeadlineExceeded(inbox.Next(absl::Milliseconds(50)).status()));
}

}  // namespace
}  // namespace mmx::worker
