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
  void SendStep(uint64_t step, uint32_t micro_batch = 0) {
    v1::StepHeader h;
    h.set_step_id(step);
    h.set_micro_batch(micro_batch);
    ASSERT_TRUE(a_->Send(2, transport::InboxKey(transport::MessageKind::kStep), h.SerializeAsString(), nullptr, 0).ok());
  }
  static v1::StepHeader Header(const transport::Message& m) {
    v1::StepHeader h;
    h.ParseFromString(m.header);
    return h;
  }
  static bool OfStep7(const transport::Message& m) { return Header(m).step_id() == 7; }
  std::unique_ptr<transport::InprocTransport> a_, b_;
};

TEST_F(StepInboxTest, PollForTakesWhatItWantsAndKeepsTheRestInOrder) {
  SendStep(7, 0);
  SendStep(8, 0);
  SendStep(9, 0);
  SendStep(7, 1);  // the sibling arrives after two other steps
  StepInbox inbox(b_.get());
  absl::StatusOr<transport::Message> first = inbox.Next(absl::Seconds(1));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Header(*first).step_id(), 7u);
  std::optional<transport::Message> sibling = inbox.PollFor(OfStep7);
  ASSERT_TRUE(sibling.has_value());
  EXPECT_EQ(Header(*sibling).micro_batch(), 1u);
  EXPECT_FALSE(inbox.PollFor(OfStep7).has_value());  // nothing more of step 7; PollFor does not wait
  absl::StatusOr<transport::Message> next = inbox.Next(absl::Seconds(1));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(Header(*next).step_id(), 8u);
  SendStep(7, 2);
  SendStep(10, 0);
  std::optional<transport::Message> late = inbox.PollFor(OfStep7);  // found past the kept step 9
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(Header(*late).micro_batch(), 2u);
  for (uint64_t want : {9u, 10u}) {
    absl::StatusOr<transport::Message> m = inbox.Next(absl::Seconds(1));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(Header(*m).step_id(), want);
  }
}

TEST_F(StepInboxTest, TimesOutWhenNothingComes) {
  StepInbox inbox(b_.get());
  EXPECT_TRUE(absl::IsDeadlineExceeded(inbox.Next(absl::Milliseconds(50)).status()));
}

}  // namespace
}  // namespace mmx::worker
