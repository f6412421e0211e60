#include "model/sampling.h"

#include <cmath>
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
  EXPECT_EQ(SampleToken(SamplingParams{}, logits.data(), 4, 0), 1);
}

TEST(SamplingTest, SameSeedSameTokensDifferentSeedDiffers) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = 0.01f * i;
  auto draw = [&](uint64_t seed) {
    std::vector<int> out;
    for (int p = 0; p < 50; ++p) out.push_back(SampleToken(SamplingParams{1.f, 1.f, 0, seed}, logits.data(), 100, p));
    return out;
  };
  EXPECT_EQ(draw(3), draw(3));
  EXPECT_NE(draw(3), draw(4));
}

// Failover replays a sequence on a new tail: the draw at a position must not depend on what
// was drawn before it, or on the order positions are drawn in.
TEST(SamplingTest, TheDrawAtAPositionDependsOnlyOnSeedAndPosition) {
  std::vector<float> logits(1000);
  for (int i = 0; i < 1000; ++i) logits[i] = 0.001f * i;
  const SamplingParams params{1.f, 1.f, 0, 77};
  std::vector<int> forward, backward(64);
  for (int p = 0; p < 64; ++p) forward.push_back(SampleToken(params, logits.data(), 1000, p));
  for (int p = 63; p >= 0; --p) backward[p] = SampleToken(params, logits.data(), 1000, p);
  EXPECT_EQ(forward, backward);
  EXPECT_EQ(UniformAt(77, 5), UniformAt(77, 5));
  // Positions are not one stream shifted: seed s at p+1 differs from seed s+1 at p.
  int same = 0;
  for (int p = 0; p < 1000; ++p) same += UniformAt(5, p + 1) == UniformAt(6, p);
  EXPECT_EQ(same, 0);
}

TEST(SamplingTest, UniformDrawsAreUniform) {
  // 20 bins over 20000 (seed, position) pairs: each bin's count within 5 sigma of 1000.
  std::vector<int> bins(20);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    for (int p = 0; p < 1000; ++p) {
      const double u = UniformAt(seed, p);
      ASSERT_GE(u, 0.0);
      ASSERT_LT(u, 1.0);
      ++bins[static_cast<int>(u * 20)];
    }
  }
  for (int b : bins) EXPECT_NEAR(b, 1000, 5 * std::sqrt(1000 * 0.95));
}

TEST(SamplingTest, TopKOnlyEverReturnsTheKBest) {
  std::vector<float> logits = {1.f, 5.f, 2.f, 4.f, 3.f};
  const SamplingParams s{10.f, 1.f, 2, 1};  // high temperature: near-uniform over the top 2
  std::map<int, int> counts;
  for (int i = 0; i < 2000; ++i) ++counts[SampleToken(s, logits.data(), 5, i)];
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[1], 700);
  EXPECT_GT(counts[3], 700);
}

TEST(SamplingTest, TopPKeepsTheSmallestSetReachingTheMass) {
  // Probabilities at temperature 1: ~[0.665, 0.245, 0.090] for logits [2, 1, 0].
  std::vector<float> logits = {2.f, 1.f, 0.f};
  const SamplingParams s{1.f, 0.8f, 0, 5};
  std::map<int, int> counts;
  for (int i = 0; i < 3000; ++i) ++counts[SampleToken(s, logits.data(), 3, i)];
  EXPECT_EQ(counts.count(2), 0u);  // 0.665 + 0.245 >= 0.8 already
  EXPECT_NEAR(counts[0] / 3000.0, 0.665 / 0.91, 0.04);
}

TEST(SamplingTest, TemperatureFollowsTheSoftmax) {
  std::vector<float> logits = {0.f, 1.f};
  const SamplingParams s{2.f, 1.f, 0, 9};
  int ones = 0;
  for (int i = 0; i < 4000; ++i) ones += SampleToken(s, logits.data(), 2, i);
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
