#include "model/sampling.h"

#include <map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::model {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

TEST(SamplingTest, GreedyPicksArgmaxWithTiesToLowerId) {
  std::vector<float> logits = {0.5f, 2.f, -1.f, 2.f};
  Sampler sampler(SamplingParams{});
  EXPECT_EQ(sampler.Sample(logits.data(), 4), 1);
}

TEST(SamplingTest, SameSeedSameTokensDifferentSeedDiffers) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = 0.01f * i;
  auto draw = [&](uint64_t seed) {
    Sampler s(SamplingParams{1.f, 1.f, 0, seed});
    std::vector<int> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.Sample(logits.data(), 100));
    return out;
  };
  EXPECT_EQ(draw(3), draw(3));
  EXPECT_NE(draw(3), draw(4));
}

TEST(SamplingTest, TopKOnlyEverReturnsTheKBest) {
  std::vector<float> logits = {1.f, 5.f, 2.f, 4.f, 3.f};
  Sampler s(SamplingParams{10.f, 1.f, 2, 1});  // high temperature: near-uniform over the top 2
  std::map<int, int> counts;
  for (int i = 0; i < 2000; ++i) ++counts[s.Sample(logits.data(), 5)];
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[1], 700);
  EXPECT_GT(counts[3], 700);
}

TEST(SamplingTest, TopPKeepsTheSmallestSetReachingTheMass) {
  // Probabilities at temperature 1: ~[0.665, 0.245, 0.090] for logits [2, 1, 0].
  std::vector<float> logits = {2.f, 1.f, 0.f};
  Sampler s(SamplingParams{1.f, 0.8f, 0, 5});
  std::map<int, int> counts;
  for (int i = 0; i < 3000; ++i) ++counts[s.Sample(logits.data(), 3)];
  EXPECT_EQ(counts.count(2), 0u);  // 0.665 + 0.245 >= 0.8 already
  EXPECT_NEAR(counts[0] / 3000.0, 0.665 / 0.91, 0.04);
}

TEST(SamplingTest, TemperatureFollowsTheSoftmax) {
  std::vector<float> logits = {0.f, 1.f};
  Sampler s(SamplingParams{2.f, 1.f, 0, 9});
  int ones = 0;
  for (int i = 0; i < 4000; ++i) ones += s.Sample(logits.data(), 2);
  const double expect = 1.0 / (1.0 + std::exp(-0.5));  // softmax([0, 0.5])[1]
  EXPECT_NEAR(ones / 4000.0, expect, 0.03);
}

TEST(SamplingTest, RejectsBadParameters) {
  EXPECT_THAT(ValidateSamplingParams({-0.5f, 1.f, 0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
  EXPECT_THAT(ValidateSamplingParams({1.f, 0.f, 0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_p")));
  EXPECT_THAT(ValidateSamplingParams({1.f, 1.5f, 0, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_p")));
  EXPECT_THAT(ValidateSamplingParams({1.f, 1.f, -2, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_k")));
  EXPECT_THAT(ValidateSamplingParams({0.7f, 0.9f, 40, 0}), IsOk());
}

}  // namespace
}  // namespace mmx::model
