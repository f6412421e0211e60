#include "coordinator/state_budget.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mmx::coordinator {
namespace {

// Four layers, the last one softmax: 2 heads of 4 (lightning state 2*4*4*4 = 128 bytes per
// layer), 1 KV head (2*1*4*4 = 32 bytes per token in the softmax layer).
model::ModelConfig SmallConfig() {
  model::ModelConfig c;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 4;
  c.attn_type_list = {model::AttentionKind::kLightning, model::AttentionKind::kLightning,
                      model::AttentionKind::kLightning, model::AttentionKind::kSoftmax};
  return c;
}

TEST(StateBudgetTest, SequenceBytesCountLightningStatesAndKvRows) {
  const model::ModelConfig c = SmallConfig();
  EXPECT_EQ(SequenceStateBytes(c, 0, 3, 1000), 3 * 128);       // lightning only: independent of length
  EXPECT_EQ(SequenceStateBytes(c, 3, 4, 10), 10 * 32);          // KV grows with positions
  EXPECT_EQ(SequenceStateBytes(c, 0, 4, 10), 3 * 128 + 10 * 32);
}

TEST(StateBudgetTest, AdmitsUntilAStageIsFullThenWaitsUntilReleased) {
  // stage0: layers 0-2 at 384 bytes a sequence, 1000 bytes: two fit. stage1: the softmax layer.
  StateBudget budget(SmallConfig(), {{"stage0", 0, 3, 1000, ""}, {"stage1", 3, 4, 100000, ""}});
  std::string why;
  EXPECT_EQ(budget.TryReserve(1, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.TryReserve(2, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.reserved_bytes("stage0"), 2 * 384);
  EXPECT_EQ(budget.reserved_bytes("stage1"), 2 * 320);
  EXPECT_EQ(budget.TryReserve(3, 10, &why), StateBudget::Admission::kWait);
  EXPECT_EQ(budget.reserved_bytes("stage1"), 2 * 320);  // a refused request reserves nothing
  budget.Release(1);
  EXPECT_EQ(budget.TryReserve(3, 10, &why), StateBudget::Admission::kAdmitted);
  budget.Release(99);  // unknown ids are ignored
  EXPECT_EQ(budget.reserved_bytes("stage0"), 2 * 384);
}

TEST(StateBudgetTest, HoldKeepsARunningRequestsPlaceEvenOverCapacity) {
  // A rebuilt cluster (failover) takes back the running requests first, whatever fits.
  StateBudget budget(SmallConfig(), {{"stage0", 0, 3, 1000, ""}});
  std::string why;
  budget.Hold(1, 10);
  budget.Hold(2, 10);
  budget.Hold(3, 10);
  EXPECT_EQ(budget.reserved_bytes("stage0"), 3 * 384);
  budget.Hold(3, 10);  // again: not counted twice
  EXPECT_EQ(budget.reserved_bytes("stage0"), 3 * 384);
  EXPECT_EQ(budget.TryReserve(4, 10, &why), StateBudget::Admission::kWait);
  budget.Release(1);
  budget.Release(2);
  EXPECT_EQ(budget.TryReserve(4, 10, &why), StateBudget::Admission::kAdmitted);
}

TEST(StateBudgetTest, ARequestThatCanNeverFitIsRefusedWithTheNumbers) {
  StateBudget budget(SmallConfig(), {{"stage1", 3, 4, 32 * 100, ""}});
  std::string why;
  EXPECT_EQ(budget.TryReserve(1, 101, &why), StateBudget::Admission::kNever);
  EXPECT_THAT(why, ::testing::HasSubstr("worker 'stage1'"));
  EXPECT_THAT(why, ::testing::HasSubstr("101 positions"));
  EXPECT_EQ(budget.TryReserve(1, 100, &why), StateBudget::Admission::kAdmitted);
}

TEST(StateBudgetTest, StagesWithUnknownCapacityDoNotLimit) {
  StateBudget budget(SmallConfig(), {{"old-worker", 0, 4, 0, ""}});
  std::string why;
  for (uint64_t id = 1; id < 100; ++id) EXPECT_EQ(budget.TryReserve(id, 1 << 20, &why), StateBudget::Admission::kAdmitted);
}

TEST(StateBudgetTest, ASequenceLivesInTheGroupWhereItLeavesTheMostMemoryFree) {
  // Two attention groups of one stage each; a sequence of 10 positions takes 704 bytes.
  StageMemory a{"a", 0, 4, 1000, "ga"}, b{"b", 0, 4, 2100, "gb"};
  StateBudget budget(SmallConfig(), {a, b});
  std::string why;
  EXPECT_EQ(budget.TryReserve(1, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.group_of(1), "gb");  // 1396 of 2100 left there against 296 of 1000 in ga
  EXPECT_EQ(budget.TryReserve(2, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.group_of(2), "gb");  // 692 of 2100 (33%) against 296 of 1000 (30%)
  EXPECT_EQ(budget.TryReserve(3, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.group_of(3), "ga");  // gb is full
  EXPECT_EQ(budget.reserved_bytes("a"), 704);
  EXPECT_EQ(budget.reserved_bytes("b"), 2 * 704);
  EXPECT_EQ(budget.TryReserve(4, 10, &why), StateBudget::Admission::kWait);
  budget.Release(3);
  EXPECT_EQ(budget.reserved_bytes("a"), 0);
  budget.Hold(5, 10, "ga");  // a running request keeps its group across a rebuilt cluster
  EXPECT_EQ(budget.group_of(5), "ga");
  EXPECT_EQ(budget.reserved_bytes("a"), 704);
  EXPECT_EQ(budget.group_of(99), "");
}

TEST(StateBudgetTest, ARequestTooBigForOneGroupGoesToAnotherAndOnlyNoGroupAtAllRefusesIt) {
  StateBudget budget(SmallConfig(), {{"small", 0, 4, 500, "ga"}, {"big", 0, 4, 5000, "gb"}});
  std::string why;
  EXPECT_EQ(budget.TryReserve(1, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.group_of(1), "gb");
  EXPECT_EQ(budget.TryReserve(2, 1000, &why), StateBudget::Admission::kNever);  // 32,384 bytes: neither
  EXPECT_THAT(why, ::testing::HasSubstr("worker 'small'"));
}

// What each group's workers measured free differs by more than a small model's sequences take:
// in shares, equal groups take turns whatever the noise.
TEST(StateBudgetTest, GroupsOfAlmostEqualMemoryTakeTurns) {
  StateBudget budget(SmallConfig(), {{"a", 0, 4, 1'000'000'000, "ga"}, {"b", 0, 4, 1'000'100'000, "gb"}});
  std::string why;
  std::vector<std::string> groups;
  for (uint64_t id = 1; id <= 4; ++id) {
    ASSERT_EQ(budget.TryReserve(id, 10, &why), StateBudget::Admission::kAdmitted);
    groups.push_back(budget.group_of(id));
  }
  EXPECT_EQ(groups, (std::vector<std::string>{"gb", "ga", "gb", "ga"}));
}

}  // namespace
}  // namespace mmx::coordinator
