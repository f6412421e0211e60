#include "worker/step_collector.h"

#include "gtest/gtest.h"
#include "mmx/v1/wire.pb.h"
#include "transport/inproc_transport.h"
#include "transport/message_keys.h"

namespace mmx::worker {
namespace {

class StepCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fabric = std::make_shared<transport::InprocFabric>();
    a_ = *transport::InprocTransport::Create(fabric, "a", {1, 42});
    b_ = *transport::InprocTransport::Create(fabric, "b", {2, 42});
    ASSERT_TRUE(a_->Connect(2, "b").ok());
    ASSERT_TRUE(b_->Connect(1, "a").ok());
  }
  void SendStep(uint64_t step, uint32_t micro_batch, int layer, uint32_t count) {
    v1::StepHeader h;
    h.set_step_id(step);
    h.set_micro_batch(micro_batch);
    h.set_layer(layer);
    h.set_num_micro_batches(count);
    ASSERT_TRUE(a_->Send(2, transport::InboxKey(transport::MessageKind::kStep), h.SerializeAsString(), nullptr, 0).ok());
  }
  static v1::StepHeader Header(const transport::Message& m) {
    v1::StepHeader h;
    h.ParseFromString(m.header);
    return h;
  }
  std::unique_ptr<transport::InprocTransport> a_, b_;
};

TEST_F(StepCollectorTest, GroupsTheMicroBatchesOfOneStepAndLayer) {
  SendStep(7, 0, 4, 2);
  SendStep(8, 0, -1, 1);  // another step slips in between
  SendStep(7, 1, 4, 2);
  StepCollector collector(b_.get(), absl::Seconds(1));
  auto group = collector.Next(absl::Seconds(1));
  ASSERT_TRUE(group.ok()) << group.status();
  ASSERT_EQ(group->size(), 2u);
  EXPECT_EQ(Header((*group)[0]).micro_batch(), 0u);
  EXPECT_EQ(Header((*group)[1]).micro_batch(), 1u);
  auto next = collector.Next(absl::Seconds(1));
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ(Header((*next)[0]).step_id(), 8u);
}

TEST_F(StepCollectorTest, RunsWhatArrivedWhenASiblingNeverComes) {
  SendStep(9, 0, 0, 2);
  StepCollector collector(b_.get(), absl::Milliseconds(50));
  auto group = collector.Next(absl::Seconds(1));
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->size(), 1u);
}

TEST_F(StepCollectorTest, TimesOutWhenNothingComes) {
  StepCollector collector(b_.get(), absl::Milliseconds(50));
  EXPECT_EQ(collector.Next(absl::Milliseconds(20)).status().code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace mmx::worker
