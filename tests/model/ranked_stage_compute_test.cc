// The multi-GPU worker's split (model/rank_split.h, model/ranked_stage_compute.h) run by threads
// on the CPU against the golden set: heads over 2 ranks (KV heads split) and 4 ranks (KV heads
// replicated), experts in blocks, the lightning norm's cross-rank sum of squares. The CUDA
// worker runs the same split with NCCL; this is its logic, checked for real without GPUs.
#include "model/ranked_stage_compute.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/stage_compute_golden_checks.h"

namespace mmx::model {
namespace {

using ::testing::HasSubstr;

constexpr float kTolerance = 5e-4f;

class RankedStageComputeTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    auto weights = testing::WholeModelWeights::Load(testing::GoldenDir());
    ASSERT_TRUE(weights.ok()) << weights.status();
    weights_ = std::move(*weights);
    auto compute = MakeThreadRankedCpuStageCompute(weights_.view(), GetParam());
    ASSERT_TRUE(compute.ok()) << compute.status();
    compute_ = std::move(*compute);
    model_ = std::make_unique<testing::StageComputeModel>(weights_.checkpoint->config(), compute_.get());
  }
  int64_t V() const { return weights_.checkpoint->config().vocab_size; }

  testing::WholeModelWeights weights_;
  std::unique_ptr<StageCompute> compute_;
  std::unique_ptr<testing::StageComputeModel> model_;
};

TEST_P(RankedStageComputeTest, PrefillMatchesGolden) { testing::CheckPrefillMatchesGolden(*model_, V(), kTolerance); }
TEST_P(RankedStageComputeTest, ChunkedPrefillMatchesGolden) {
  testing::CheckChunkedPrefillMatchesGolden(*model_, V(), kTolerance);
}
TEST_P(RankedStageComputeTest, GreedyDecodeMatchesGolden) {
  testing::CheckGreedyDecodeMatchesGolden(*model_, V(), kTolerance);
}
TEST_P(RankedStageComputeTest, MixedDecodeAndPrefillBatchMatchesGolden) {
  testing::CheckMixedDecodeAndPrefillBatch(*model_, V(), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Ranks, RankedStageComputeTest, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& info) { return std::to_string(info.param) + "ranks"; });

TEST(RankSliceTest, EachRankHoldsItsHeadsAndABlockOfExperts) {
  auto weights = testing::WholeModelWeights::Load(testing::GoldenDir());
  ASSERT_TRUE(weights.ok()) << weights.status();
  auto sliced = SliceWeightsForRanks(weights->view(), 2);
  ASSERT_TRUE(sliced.ok()) << sliced.status();
  const ModelConfig& full = weights->checkpoint->config();  // 4 heads, 2 KV heads, head_dim 64
  for (int r = 0; r < 2; ++r) {
    const RankWeights& w = *(*sliced)[r];
    EXPECT_EQ(w.config.num_attention_heads, 2);
    EXPECT_EQ(w.config.num_key_value_heads, 1);
    const AttentionBlockWeights& lightning = w.attention[0];
    EXPECT_EQ(lightning.lightning.qkv.rows, 2 * 3 * 64);
    EXPECT_EQ(lightning.lightning.out.rows, full.hidden_size);
    EXPECT_EQ(lightning.lightning.out.cols, 2 * 64);
    EXPECT_EQ(lightning.lightning.norm.size(), 2u * 64);
    EXPECT_EQ(lightning.lightning.slopes[0], weights->attention[0].lightning.slopes[2 * r]);
    // Row blocks are views into the full matrix; column blocks are copies.
    EXPECT_EQ(lightning.lightning.qkv.data,
              static_cast<const char*>(weights->attention[0].lightning.qkv.data) + r * 2 * 3 * 64 * full.hidden_size * 2);
    EXPECT_EQ(w.attention[3].softmax.k.rows, 64);
    EXPECT_EQ(w.embedding != nullptr, r == 0);
    EXPECT_EQ(w.tail != nullptr, r == 0);
    int held = 0;
    for (int e = 0; e < full.num_local_experts; ++e) {
      if (w.experts[5].experts[e].loaded()) {
        ++held;
        EXPECT_EQ(e / 4, r) << "expert " << e;  // blocks of 4 of the 8
      }
    }
    EXPECT_EQ(held, 4);
  }
  // Out-projection columns of rank 1 are columns [128, 256) of the full matrix.
  const auto& full_out = weights->attention[0].lightning.out;
  const auto& part = (*sliced)[1]->attention[0].lightning.out;
  const uint16_t* a = static_cast<const uint16_t*>(full_out.data);
  const uint16_t* b = static_cast<const uint16_t*>(part.data);
  for (int64_t row : {int64_t{0}, full_out.rows - 1}) {
    for (int64_t col : {int64_t{0}, part.cols - 1}) EXPECT_EQ(b[row * part.cols + col], a[row * full_out.cols + 128 + col]);
  }
}

TEST(RankSliceTest, HeadsThatDoNotSplitEvenlyAreRefused) {
  auto weights = testing::WholeModelWeights::Load(testing::GoldenDir());
  ASSERT_TRUE(weights.ok()) << weights.status();
  auto compute = MakeThreadRankedCpuStageCompute(weights->view(), 3);
  ASSERT_FALSE(compute.ok());
  EXPECT_EQ(compute.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(compute.status().message(), HasSubstr("do not split evenly over 3 GPUs"));
}

TEST(ThreadRankGroupTest, EveryRankGetsTheSameSum) {
  ThreadRankGroup group(3);
  std::vector<std::vector<float>> data = {{1.f, 1e8f}, {2.f, 1.f}, {3.f, -1e8f}};
  std::vector<std::thread> threads;
  std::vector<absl::Status> status(3);
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] { status[r] = group.member(r)->AllReduceSum(data[r].data(), 2); });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) {
    ASSERT_TRUE(status[r].ok()) << status[r];
    EXPECT_EQ(data[r][0], 6.f);
    EXPECT_EQ(data[r][1], data[0][1]);  // bit-identical on every rank (rank order)
  }
}

TEST(ThreadRankGroupTest, AbortReleasesRanksWaitingForOneThatFailed) {
  ThreadRankGroup group(2);
  float x = 1;
  absl::Status waiting;
  std::thread t([&] { waiting = group.member(0)->AllReduceSum(&x, 1); });
  group.Abort();  // rank 1 never comes
  t.join();
  EXPECT_EQ(waiting.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(waiting.message(), HasSubstr("another rank"));
}

}  // namespace
}  // namespace mmx::model
