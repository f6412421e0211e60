// The checked-in example plans (deploy/examples/plans), judged on their own rather than against
// the planner that wrote them: each is a valid shard config of the real model, and every worker
// of it fits its machine in the cluster spec it was planned for (the cost model's memory account
// of that layout, not the planner's search). tools/plan_command_test.cc checks they are up to
// date with the planner.
#include <string>

#include "gtest/gtest.h"
#include "plan/cost_model.h"
#include "plan/layout.h"
#include "plan/model_sizes.h"
#include "plan/shard_config.h"
#include "tests/plan/plan_test_util.h"
#include "tests/testing/status_matchers.h"

namespace mmx::plan {
namespace {

using ::mmx::testing::IsOk;
using testing::RealConfig;
using testing::RepoPath;

class ExamplePlanTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ExamplePlanTest, IsAValidShardConfigAndEveryWorkerFitsItsMachine) {
  const model::ModelConfig config = RealConfig();
  auto shard = LoadShardConfig(RepoPath("deploy/examples/plans/" + GetParam() + ".shard.yaml"));
  ASSERT_THAT(shard, IsOk());
  EXPECT_THAT(ValidateShardConfig(*shard, config), IsOk());
  auto cluster = LoadClusterSpec(RepoPath("deploy/examples/clusters/" + GetParam() + ".yaml"));
  ASSERT_THAT(cluster, IsOk());
  auto layout = LayoutFromShardConfig(*shard, *cluster, config.num_hidden_layers, config.num_local_experts);
  ASSERT_THAT(layout, IsOk());
  const CostModel cost(ComputeModelSizes(config), *cluster);
  const std::vector<WorkerMemory> memory = cost.Memory(*layout);
  ASSERT_EQ(memory.size(), cluster->workers.size());
  for (size_t w = 0; w < memory.size(); ++w) {
    EXPECT_TRUE(memory[w].fits()) << cluster->workers[w].name << ": " << memory[w].total() << " of " << memory[w].usable;
  }
  EXPECT_TRUE(cost.Predict(*layout).fits());
}

INSTANTIATE_TEST_SUITE_P(Plans, ExamplePlanTest, ::testing::Values("h100x16", "mixed", "consumer24-int8"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = (c == '-') ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace mmx::plan
