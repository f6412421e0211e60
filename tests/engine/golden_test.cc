// The engine against the official implementation's outputs (tests/testing/golden_checks.h), in
// every layout the runtime supports, all in this process over InprocTransport: one CPU worker
// holding everything (what `mmx-coord run` runs), its heads and experts split over ranks on CPU
// threads (what a multi-GPU worker computes), and a disaggregated cluster (a head with only the
// embedding, two attention stages, expert hosts with replicated experts) with two micro-batches
// per step. Tolerance 5e-4: fp32 activations.
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parallel/ranked_stage_compute.h"
#include "tests/testing/golden_checks.h"

namespace mmx::engine {
namespace {

constexpr float kTolerance = 5e-4f;

struct Layout {
  std::string name;
  std::string shard_yaml;  // "" = one worker holding everything
  int ranks = 1;           // > 1: the worker's compute split over ranks on CPU threads
  int micro_batches = 1;
};

std::string DisaggregatedShard() {
  return absl::StrCat("model: ", testing::GoldenDir(), R"(
workers:
  - {name: head, embedding: true}
  - {name: stage0, attention: [0, 3], experts: [{layers: [0, 8], ids: [0, 1]}]}
  - {name: stage1, attention: [3, 8], lm_head: true}
  - {name: experts-a, experts: [{layers: [0, 8], ids: [2, 3, 4, 5]}]}
  - {name: experts-b, experts: [{layers: [0, 8], ids: [4, 5, 6, 7]}]}
)");
}

class EngineGoldenTest : public ::testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    LocalEngineOptions o;
    o.kv_dtype = DType::kF32;  // golden-exact
    o.model_dir = testing::GoldenDir();
    o.start_scheduler = false;
    if (!GetParam().shard_yaml.empty()) {
      auto shard = plan::ParseShardConfig(GetParam().shard_yaml);
      ASSERT_TRUE(shard.ok()) << shard.status();
      o.shard = *shard;
      o.shard->kv_dtype = DType::kF32;
    }
    if (const int ranks = GetParam().ranks; ranks > 1) {
      o.place_shard = [ranks](worker::LoadedShard& shard, const worker::ProgressFn&) -> absl::Status {
        MMX_ASSIGN_OR_RETURN(shard.compute, parallel::MakeThreadRankedCpuStageCompute(shard.weights_view(), ranks));
        return absl::OkStatus();
      };
    }
    auto engine = LocalEngine::Start(std::move(o));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    stepper_ = std::make_unique<testing::EngineStepper>(*engine_);
  }

  std::unique_ptr<LocalEngine> engine_;
  std::unique_ptr<testing::EngineStepper> stepper_;
};

TEST_P(EngineGoldenTest, PrefillLogitsMatchAtEveryPosition) { testing::CheckPrefillAtEveryPosition(*stepper_, kTolerance); }
TEST_P(EngineGoldenTest, ChunkedPrefillMatchesTokenByTokenAndGolden) { testing::CheckChunkedPrefill(*stepper_, kTolerance); }
TEST_P(EngineGoldenTest, TeacherForcedDecodeLogitsMatch) { testing::CheckDecode(*stepper_, kTolerance, true); }
TEST_P(EngineGoldenTest, GreedyDecodeReproducesIdsAndLogits) { testing::CheckDecode(*stepper_, kTolerance, false); }
TEST_P(EngineGoldenTest, BatchedRowsMatch) { testing::CheckBatchedRows(*stepper_, kTolerance, GetParam().micro_batches); }
TEST_P(EngineGoldenTest, MixedLengthBatchMatchesEachPromptAlone) {
  testing::CheckMixedLengthBatch(*stepper_, kTolerance, GetParam().micro_batches);
}

INSTANTIATE_TEST_SUITE_P(Layouts, EngineGoldenTest,
                         ::testing::Values(Layout{"OneCpuWorker", "", 1, 1},
                                           Layout{"TwoRanksSplittingKvHeads", "", 2, 1},
                                           Layout{"FourRanksReplicatingKvHeads", "", 4, 1},
                                           Layout{"DisaggregatedTwoMicroBatches", DisaggregatedShard(), 1, 2}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace mmx::engine
