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
  const int64_t each = model::SequenceStateBytes(c, 0, c.num_hidden_layers, positions, DType::kBF16);
  return StateBudget(c, DType::kBF16, {{"stage", 0, c.num_hidden_layers, sequences * each, ""}});
}

const PreemptJob kNoPreemption = [] { return false; };

AdmissionRoom Room(int slots, int job_slots = 1000) { return AdmissionRoom{slots, job_slots}; }

TEST(AdmissionTest, InteractiveRequestsFirstThenJobsRoundRobin) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 100);
  WaitingRoom waiting;
  for (uint64_t id : {1, 2, 3}) waiting.Push(Make(id, "job-a"));
  for (uint64_t id : {4, 5}) waiting.Push(Make(id, "job-b"));
  for (uint64_t id : {6, 7}) waiting.Push(Make(id, ""));
  Admitted a = AdmitWaiting(waiting, budget, Room(5), kNoPreemption);
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{6, 7, 1, 4, 2}));
  EXPECT_TRUE(a.refused.empty());
  EXPECT_EQ(waiting.size(), 2u);
}

TEST(AdmissionTest, JobRequestsTakeAtMostTheirShareOfTheSlots) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 100);
  WaitingRoom waiting;
  for (uint64_t id = 1; id <= 5; ++id) waiting.Push(Make(id, "job"));
  Admitted a = AdmitWaiting(waiting, budget, Room(10, /*job_slots=*/2), kNoPreemption);
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(JobSlots(32, 0.75), 24);
  EXPECT_EQ(JobSlots(32, 1.0), 32);
  EXPECT_EQ(JobSlots(3, 0.5), 1);
  EXPECT_EQ(JobSlots(1, 0.75), 1);  // a job can always run
  EXPECT_EQ(JobSlots(4, 0.01), 1);
}

TEST(AdmissionTest, AnInteractiveRequestWithoutASlotPreemptsAJobRequest) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 100);
  WaitingRoom waiting;
  waiting.Push(Make(1, ""));
  waiting.Push(Make(2, ""));
  waiting.Push(Make(3, "job"));
  int preemptions = 0;
  // One job request is running: the first interactive request takes its slot, the second waits.
  Admitted a = AdmitWaiting(waiting, budget, Room(0), [&] { return ++preemptions <= 1; });
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{1}));
  EXPECT_EQ(preemptions, 2);
  ASSERT_EQ(waiting.size(), 2u);
  EXPECT_EQ(waiting.interactive().Front().request->id(), 2u);  // keeps its turn
}

TEST(AdmissionTest, AnInteractiveRequestWithoutStatePreemptsJobRequestsUntilItFits) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 3, /*positions=*/64);  // three requests of one KV block
  for (uint64_t id : {10, 11, 12}) budget.Hold(id, 64);  // running job requests
  WaitingRoom waiting;
  waiting.Push(Make(1, "", /*prompt=*/100, /*max_tokens=*/28));  // two KV blocks: needs two of them
  std::vector<uint64_t> victims = {10, 11, 12};
  auto preempt = [&] {
    if (victims.empty()) return false;
    budget.Release(victims.front());
    victims.erase(victims.begin());
    return true;
  };
  Admitted a = AdmitWaiting(waiting, budget, Room(5), preempt);
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{1}));
  EXPECT_EQ(victims, (std::vector<uint64_t>{12}));
}

TEST(AdmissionTest, AJobRequestThatMustWaitForStateKeepsItsTurnAndPreemptsNothing) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 2);  // room for two requests of 8 positions, not three
  WaitingRoom waiting;
  for (uint64_t id = 1; id <= 3; ++id) waiting.Push(Make(id, "job"));
  Admitted a = AdmitWaiting(waiting, budget, Room(10), [] {
    ADD_FAILURE() << "a job request preempted";
    return false;
  });
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{1, 2}));
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting.jobs().Front().request->id(), 3u);
  budget.Release(1);
  a = AdmitWaiting(waiting, budget, Room(10), kNoPreemption);
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{3}));
}

TEST(AdmissionTest, APreemptedJobRequestGoesBackFirstInItsJob) {
  WaitingRoom waiting;
  waiting.Push(Make(1, "job"));
  waiting.Push(Make(2, "other-job"));
  waiting.PushFront(Make(3, "other-job"));
  EXPECT_EQ(waiting.jobs().Pop().request->id(), 3u);
  EXPECT_EQ(waiting.jobs().Pop().request->id(), 1u);
  EXPECT_EQ(waiting.jobs().Pop().request->id(), 2u);
}

TEST(AdmissionTest, ARequestNoStageCouldEverHoldIsRefusedSayingWhy) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 1, /*positions=*/64);  // one KV block
  WaitingRoom waiting;
  waiting.Push(Make(1, "", /*prompt=*/60, /*max_tokens=*/10));  // two
  waiting.Push(Make(2, ""));
  Admitted a = AdmitWaiting(waiting, budget, Room(10), kNoPreemption);
  ASSERT_EQ(a.refused.size(), 1u);
  EXPECT_EQ(a.refused[0].entry.request->id(), 1u);
  EXPECT_THAT(a.refused[0].status, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("stage")));
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{2}));  // the one behind it still runs
}

TEST(AdmissionTest, CancelledRequestsAreRefusedNotAdmitted) {
  const model::ModelConfig c = Tiny();
  StateBudget budget = Budget(c, 100);
  WaitingRoom waiting;
  ScheduledRequest cancelled = Make(1, "");
  cancelled.request->Cancel();
  waiting.Push(cancelled);
  waiting.Push(Make(2, ""));
  Admitted a = AdmitWaiting(waiting, budget, Room(10), kNoPreemption);
  ASSERT_EQ(a.refused.size(), 1u);
  EXPECT_THAT(a.refused[0].status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(Ids(a.admitted), (std::vector<uint64_t>{2}));
  EXPECT_EQ(budget.reserved_bytes("stage"), model::SequenceStateBytes(c, 0, c.num_hidden_layers, 8, DType::kBF16));
}

TEST(AdmissionTest, WithoutAReadyClusterOnlyExpiredOrCancelledRequestsLeave) {
  WaitingRoom queue;
  const absl::Time t0 = absl::Now();
  ScheduledRequest old = Make(1, ""), fresh = Make(2, ""), cancelled = Make(3, "");
  old.queued_at = t0 - absl::Seconds(31);
  fresh.queued_at = t0 - absl::Seconds(5);
  cancelled.queued_at = t0;
  cancelled.request->Cancel();
  for (auto& s : {old, fresh, cancelled}) queue.Push(s);
  EXPECT_EQ(NextExpiry(queue, absl::Seconds(30)), t0 - absl::Seconds(1));
  std::vector<Refusal> gone = ExpireWaiting(queue, t0, absl::Seconds(30), "cluster not ready: worker 'a' is loading");
  ASSERT_EQ(gone.size(), 2u);
  EXPECT_THAT(gone[0].status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("worker 'a' is loading")));
  EXPECT_THAT(gone[1].status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  ASSERT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.interactive().Front().request->id(), 2u);
  EXPECT_EQ(NextExpiry(queue, absl::Seconds(30)), t0 + absl::Seconds(25));
}

}  // namespace
}  // namespace mmx::coordinator
