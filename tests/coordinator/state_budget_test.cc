#include "coordinator/state_budget.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mmx::coordinator {
namespace {

// Four layers, the last one softmax: 2 heads of 4 (lightning state 2*4*4*4 = 128 bytes per
// layer), 1 KV head (2*1*4*4 = 32 bytes per token in the softmax layer, fp32, as these tests
// count; 16 in bf16), held in blocks of 64 tokens (2048 bytes).
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
  constexpr DType kF32 = DType::kF32;
  EXPECT_EQ(model::SequenceStateBytes(c, 0, 3, 1000, kF32), 3 * 128);  // lightning only: independent of length
  EXPECT_EQ(model::SequenceStateBytes(c, 3, 4, 10, kF32), 64 * 32);    // KV in whole blocks of 64 rows
  EXPECT_EQ(model::SequenceStateBytes(c, 3, 4, 64, kF32), 64 * 32);
  EXPECT_EQ(model::SequenceStateBytes(c, 3, 4, 65, kF32), 128 * 32);   // ... one more as it grows
  EXPECT_EQ(model::SequenceStateBytes(c, 0, 4, 10, kF32), 3 * 128 + 64 * 32);
  EXPECT_EQ(model::SequenceStateBytes(c, 3, 4, 65, DType::kBF16), 128 * 16);  // bf16: half the KV
  EXPECT_EQ(model::SequenceStateBytes(c, 0, 3, 1000, DType::kBF16), 3 * 128);  // the lightning state stays fp32
}

TEST(StateBudgetTest, AdmitsUntilAStageIsFullThenWaitsUntilReleased) {
  // stage0: layers 0-2 at 384 bytes a sequence, 1000 bytes: two fit. stage1: the softmax layer.
  StateBudget budget(SmallConfig(), DType::kF32, {{"stage0", 0, 3, 1000, ""}, {"stage1", 3, 4, 100000, ""}});
  std::string why;
  EXPECT_EQ(budget.TryReserve(1, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.TryReserve(2, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.reserved_bytes("stage0"), 2 * 384);
  EXPECT_EQ(budget.reserved_bytes("stage1"), 2 * 2048);
  EXPECT_EQ(budget.TryReserve(3, 10, &why), StateBudget::Admission::kWait);
  EXPECT_EQ(budget.reserved_bytes("stage1"), 2 * 2048);  // a refused request reserves nothing
  budget.Release(1);
  EXPECT_EQ(budget.TryReserve(3, 10, &why), StateBudget::Admission::kAdmitted);
  budget.Release(99);  // unknown ids are ignored
  EXPECT_EQ(budget.reserved_bytes("stage0"), 2 * 384);
}

TEST(StateBudgetTest, HoldKeepsARunningRequestsPlaceEvenOverCapacity) {
  // A rebuilt cluster (failover) takes back the running requests first, whatever fits.
  StateBudget budget(SmallConfig(), DType::kF32, {{"stage0", 0, 3, 1000, ""}});
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
  StateBudget budget(SmallConfig(), DType::kF32, {{"stage1", 3, 4, 32 * 128, ""}});
  std::string why;
  EXPECT_EQ(budget.TryReserve(1, 129, &why), StateBudget::Admission::kNever);  // three blocks
  EXPECT_THAT(why, ::testing::HasSubstr("worker 'stage1'"));
  EXPECT_THAT(why, ::testing::HasSubstr("129 positions"));
  EXPECT_EQ(budget.TryReserve(1, 128, &why), StateBudget::Admission::kAdmitted);
}

TEST(StateBudgetTest, StagesWithUnknownCapacityDoNotLimit) {
  StateBudget budget(SmallConfig(), DType::kF32, {{"old-worker", 0, 4, 0, ""}});
  std::string why;
  for (uint64_t id = 1; id < 100; ++id) EXPECT_EQ(budget.TryReserve(id, 1 << 20, &why), StateBudget::Admission::kAdmitted);
}

TEST(StateBudgetTest, ASequenceLivesInTheGroupWhereItLeavesTheMostMemoryFree) {
  // Two attention groups of one stage each; a sequence of 10 positions takes 384 + 2048 = 2432 bytes.
  StageMemory a{"a", 0, 4, 3500, "ga"}, b{"b", 0, 4, 7200, "gb"};
  StateBudget budget(SmallConfig(), DType::kF32, {a, b});
  std::string why;
  EXPECT_EQ(budget.TryReserve(1, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.group_of(1), "gb");  // 4768 of 7200 left there against 1068 of 3500 in ga
  EXPECT_EQ(budget.TryReserve(2, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.group_of(2), "gb");  // 2336 of 7200 (32%) against 1068 of 3500 (31%)
  EXPECT_EQ(budget.TryReserve(3, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.group_of(3), "ga");  // gb is full
  EXPECT_EQ(budget.reserved_bytes("a"), 2432);
  EXPECT_EQ(budget.reserved_bytes("b"), 2 * 2432);
  EXPECT_EQ(budget.TryReserve(4, 10, &why), StateBudget::Admission::kWait);
  budget.Release(3);
  EXPECT_EQ(budget.reserved_bytes("a"), 0);
  budget.Hold(5, 10, "ga");  // a running request keeps its group across a rebuilt cluster
  EXPECT_EQ(budget.group_of(5), "ga");
  EXPECT_EQ(budget.reserved_bytes("a"), 2432);
  EXPECT_EQ(budget.group_of(99), "");
}

TEST(StateBudgetTest, ARequestTooBigForOneGroupGoesToAnotherAndOnlyNoGroupAtAllRefusesIt) {
  StateBudget budget(SmallConfig(), DType::kF32, {{"small", 0, 4, 500, "ga"}, {"big", 0, 4, 5000, "gb"}});
  std::string why;
  EXPECT_EQ(budget.TryReserve(1, 10, &why), StateBudget::Admission::kAdmitted);
  EXPECT_EQ(budget.group_of(1), "gb");
  EXPECT_EQ(budget.TryReserve(2, 1000, &why), StateBudget::Admission::kNever);  // 33,152 bytes: neither
  EXPECT_THAT(why, ::testing::HasSubstr("worker 'small'"));
}

// What each group's workers measured free differs by more than a small model's sequences take:
// in shares, equal groups take turns whatever the noise.
TEST(StateBudgetTest, GroupsOfAlmostEqualMemoryTakeTurns) {
  StateBudget budget(SmallConfig(), DType::kF32, {{"a", 0, 4, 1'000'000'000, "ga"}, {"b", 0, 4, 1'000'100'000, "gb"}});
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
