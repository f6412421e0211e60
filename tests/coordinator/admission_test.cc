#include "coordinator/admission.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/config.h"
#include "tests/testing/golden.h"
#include "tests/testing/status_matchers.h"

namespace mmx::coordinator {
namespace {

using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

model::ModelConfig Tiny() {
  auto c = model::ModelConfig::FromFile(testing::GoldenDir());
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

ScheduledRequest Make(uint64_t id, const std::string& source, int prompt = 4, int max_tokens = 4) {
  Request::Params p;
  p.prompt.assign(prompt, 1);
  p.max_tokens = max_tokens;
  p.source = source;
  return ScheduledRequest{std::make_shared<Request>(id, p), absl::Now()};
}

std::vector<uint64_t> Ids(const std::vector<ScheduledRequest>& v) {
  std::vector<uint64_t> ids;
  for (const auto& s : v) ids.push_back(s.request->id());
  return ids;
}

// One stage over the whole model with room for `sequences` sequences of `positions` tokens each.
StateBudget Budget(const model::ModelConfig& c, int sequences, int64_t positions = 8) {
  return StateBudget(
      c, {{"stage", 0, c.num_hidden_layers, sequences * SequenceStateBytes(c, 0, c.num_hidden_layers, positions)}});
}

TEST(AdmissionTest, AdmitsUpToTheRoomInFairOrderAcrossSources) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 100);
  FairQueue<ScheduledRequest> queue;
  queue.Push("job", Make(1, "job"));
  queue.Push("job", Make(2, "job"));
  queue.Push("job", Make(3, "job"));
  queue.Push("", Make(4, ""));
  Admitted a = AdmitWaiting(queue, budget, 3);
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{1, 4, 2}));  // the interactive one takes its turn
  EXPECT_TRUE(a.refused.empty());
  EXPECT_EQ(queue.size(), 1u);
}

TEST(AdmissionTest, ARequestThatMustWaitForStateKeepsItsTurn) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 2);  // room for two requests of 8 positions, not three
  FairQueue<ScheduledRequest> queue;
  for (uint64_t id = 1; id <= 3; ++id) queue.Push("", Make(id, ""));
  Admitted a = AdmitWaiting(queue, budget, 10);
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{1, 2}));
  ASSERT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.Front().request->id(), 3u);
  budget.Release(1);
  a = AdmitWaiting(queue, budget, 10);
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{3}));
}

TEST(AdmissionTest, ARequestNoStageCouldEverHoldIsRefusedSayingWhy) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 1, /*positions=*/20);
  FairQueue<ScheduledRequest> queue;
  queue.Push("", Make(1, "", /*prompt=*/30, /*max_tokens=*/10));
  queue.Push("", Make(2, ""));
  Admitted a = AdmitWaiting(queue, budget, 10);
  ASSERT_EQ(a.refused.size(), 1u);
  EXPECT_EQ(a.refused[0].entry.request->id(), 1u);
  EXPECT_THAT(a.refused[0].status, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("stage")));
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{2}));  // the one behind it still runs
}

TEST(AdmissionTest, CancelledRequestsAreRefusedNotAdmitted) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 100);
  FairQueue<ScheduledRequest> queue;
  ScheduledRequest cancelled = Make(1, "");
  cancelled.request->Cancel();
  queue.Push("", cancelled);
  queue.Push("", Make(2, ""));
  Admitted a = AdmitWaiting(queue, budget, 10);
  ASSERT_EQ(a.refused.size(), 1u);
  EXPECT_THAT(a.refused[0].status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{2}));
  EXPECT_EQ(budget.reserved_bytes("stage"), SequenceStateBytes(c, 0, c.num_hidden_layers, 8));
}

TEST(AdmissionTest, WithoutAReadyClusterOnlyExpiredOrCancelledRequestsLeave) {
  FairQueue<ScheduledRequest> queue;
  const absl::Time t0 = absl::Now();
  ScheduledRequest old = Make(1, ""), fresh = Make(2, ""), cancelled = Make(3, "");
  old.queued_at = t0 - absl::Seconds(31);
  fresh.queued_at = t0 - absl::Seconds(5);
  cancelled.queued_at = t0;
  cancelled.request->Cancel();
  for (auto& s : {old, fresh, cancelled}) queue.Push("", s);
  EXPECT_EQ(NextExpiry(queue, absl::Seconds(30)), t0 - absl::Seconds(1));
  std::vector<Refusal> gone = ExpireWaiting(queue, t0, absl::Seconds(30), "cluster not ready: worker 'a' is loading");
  ASSERT_EQ(gone.size(), 2u);
  EXPECT_THAT(gone[0].status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("worker 'a' is loading")));
  EXPECT_THAT(gone[1].status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  ASSERT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.Front().request->id(), 2u);
  EXPECT_EQ(NextExpiry(queue, absl::Seconds(30)), t0 + absl::Seconds(25));
}

}  // namespace
}  // namespace mmx::coordinator
