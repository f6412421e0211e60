// Layer by layer against the official hidden states, router logits and final norm (the golden
// debug files), for the CPU compute and its split over ranks on CPU threads.
#include "gtest/gtest.h"
#include "parallel/ranked_stage_compute.h"
#include "tests/testing/layer_trace.h"
#include "tests/testing/whole_model.h"

namespace mmx {
namespace {

constexpr float kTolerance = 5e-4f;

TEST(LayerTraceTest, CpuMatchesHiddenStatesRouterLogitsAndFinalNorm) {
  auto shard = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(shard.ok()) << shard.status();
  testing::CheckLayerTrace(*(*shard)->compute, (*shard)->config(), kTolerance);
}

TEST(LayerTraceTest, RanksOnCpuThreadsMatchToo) {
  auto shard = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(shard.ok()) << shard.status();
  for (int ranks : {2, 4}) {
    auto compute = parallel::MakeThreadRankedCpuStageCompute((*shard)->weights_view(), ranks);
    ASSERT_TRUE(compute.ok()) << compute.status();
    SCOPED_TRACE(ranks);
    testing::CheckLayerTrace(**compute, (*shard)->config(), kTolerance);
  }
}

}  // namespace
}  // namespace mmx
