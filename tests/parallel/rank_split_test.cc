#include "parallel/rank_split.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/kernels.h"
#include "tests/testing/status_matchers.h"

namespace mmx::parallel {

using namespace ::mmx::model;  // NOLINT: the tests read the model's types throughout
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

model::ModelConfig Heads(int q, int kv) {
  model::ModelConfig c;
  c.num_attention_heads = q;
  c.num_key_value_heads = kv;
  c.head_dim = 128;
  return c;
}

TEST(RankSplitTest, RealModelOnEightGpusSplitsHeadsKvHeadsAndExperts) {
  // MiniMax-Text-01: 64 query heads, 8 KV heads, 32 experts.
  std::vector<int> experts(32);
  for (int e = 0; e < 32; ++e) experts[e] = e;
  absl::StatusOr<std::vector<RankSlice>> s = SplitAcrossRanks(Heads(64, 8), 8, experts);
  ASSERT_THAT(s, IsOk());
  ASSERT_EQ(s->size(), 8u);
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ((*s)[r].q_begin, 8 * r);
    EXPECT_EQ((*s)[r].q_end, 8 * r + 8);
    EXPECT_EQ((*s)[r].kv_begin, r);  // query heads 8r..8r+7 read KV head r
    EXPECT_EQ((*s)[r].kv_end, r + 1);
    EXPECT_EQ((*s)[r].experts.size(), 4u);
  }
  EXPECT_THAT((*s)[1].experts, ElementsAre(4, 5, 6, 7));
}

TEST(RankSplitTest, MoreRanksThanKvHeadsReplicateTheSharedOne) {
  absl::StatusOr<std::vector<RankSlice>> s = SplitAcrossRanks(Heads(64, 8), 16, {0, 1, 2});
  ASSERT_THAT(s, IsOk());
  // Ranks 0 and 1 hold query heads 0-3 and 4-7: both read KV head 0.
  EXPECT_EQ((*s)[0].kv_begin, 0);
  EXPECT_EQ((*s)[1].kv_begin, 0);
  EXPECT_EQ((*s)[2].kv_begin, 1);
  EXPECT_EQ((*s)[15].kv_begin, 7);
  // Uneven experts: the first ranks take one more; some ranks take none.
  EXPECT_THAT((*s)[0].experts, ElementsAre(0));
  EXPECT_THAT((*s)[2].experts, ElementsAre(2));
  EXPECT_TRUE((*s)[3].experts.empty());
}

TEST(RankSplitTest, UnevenSplitsSayWhatToChange) {
  EXPECT_THAT(SplitAcrossRanks(Heads(64, 8), 3, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("divides 64")));
  EXPECT_THAT(SplitAcrossRanks(Heads(48, 6), 4, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("one must divide the other")));
  EXPECT_THAT(SplitAcrossRanks(Heads(64, 8), 0, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SplitAcrossRanks(Heads(64, 8), 1, {}), IsOk());
}

// The lightning output norm under tensor parallelism: per-rank partial sums of squares,
// all-reduced, then each rank normalises its slice; concatenated, that is the single-device
// RMSNorm over all heads (MODEL.md §3.6), not a per-rank norm.
TEST(RankSplitTest, CrossRankNormEqualsTheFullRowNorm) {
  const int64_t tokens = 3, heads = 8, head_dim = 16, width = heads * head_dim;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(tokens * width), gamma(width);
  for (float& v : x) v = dist(rng);
  for (float& v : gamma) v = 1.f + 0.1f * dist(rng);
  // Make the heads' scales differ, so a per-rank norm would be visibly wrong.
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < width; ++i) x[t * width + i] *= 1.f + static_cast<float>(i / head_dim);
  std::vector<float> expected(x.size());
  kernels::RmsNorm(x.data(), tokens, width, gamma.data(), 1e-6f, expected.data());

  for (int ranks : {1, 2, 4, 8}) {
    absl::StatusOr<std::vector<RankSlice>> split = SplitAcrossRanks(Heads(static_cast<int>(heads), 0), ranks, {});
    ASSERT_THAT(split, IsOk());
    const int64_t slice = width / ranks;
    // Each rank's activations [tokens, slice], as its heads produced them.
    std::vector<std::vector<float>> local(ranks, std::vector<float>(tokens * slice));
    for (int r = 0; r < ranks; ++r)
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t i = 0; i < slice; ++i) local[r][t * slice + i] = x[t * width + (*split)[r].q_begin * head_dim + i];
    std::vector<double> total(tokens, 0.0), partial(tokens);
    for (int r = 0; r < ranks; ++r) {  // the all-reduce (sum)
      kernels::RowSumOfSquares(local[r].data(), tokens, slice, partial.data());
      for (int64_t t = 0; t < tokens; ++t) total[t] += partial[t];
    }
    for (int r = 0; r < ranks; ++r) {
      std::vector<float> out(tokens * slice);
      kernels::NormalizeRows(local[r].data(), tokens, slice, total.data(), width, gamma.data() + (*split)[r].q_begin * head_dim,
                     1e-6f, out.data());
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t i = 0; i < slice; ++i) {
          const float want = expected[t * width + (*split)[r].q_begin * head_dim + i];
          EXPECT_NEAR(out[t * slice + i], want, 2e-6f * (1.f + std::fabs(want))) << "ranks " << ranks;
        }
    }
  }
}

}  // namespace
}  // namespace mmx::parallel
